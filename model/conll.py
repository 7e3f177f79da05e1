"""Readers for the datasets in ``../shared``: CoNLL NER files and MasakhaNEWS TSV files.

Every reader validates what it reads and raises ``DataFileError`` naming the file and line of the
first malformed record: a file read as garbage would otherwise train and score on garbage without
a word (a MasakhaNEWS file read without CSV quoting once gave 10x more "articles" whose category
was a fragment of text).
"""
from __future__ import annotations

import contextlib
import csv
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

BIO_TAG = re.compile(r"^(O|[BI]-\S+)$")
NEWS_COLUMNS = ("category", "headline", "text")


class DataFileError(ValueError):
    """A data file that does not parse; the message starts with ``<file>:<line>:``."""

    def __init__(self, path: str | Path, line: int | None, problem: str):
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {problem}")
        self.path, self.line, self.problem = str(path), line, problem


@contextlib.contextmanager
def _utf8(path: str | Path, line: Callable[[], int]) -> Iterator[None]:
    """Bytes that are not UTF-8 are a malformed file too, reported like the rest."""
    try:
        yield
    except UnicodeDecodeError as e:
        raise DataFileError(path, line(), f"not UTF-8 text ({e.reason} at byte {e.start} of a read block)") from None


def read_conll(path: str | Path, columns: int = 1) -> list[tuple[list[str], ...]]:
    """Sentences from a CoNLL file: ``token TAG [TAG ...]`` per line, blank line between sentences.

    Returns one tuple per sentence: ``(tokens, tags_col1[, tags_col2 ...])`` with ``columns`` tag
    columns (MasakhaNER 2.0 has 1; the multi-annotator files have 2 or 3). Lines with fewer tag
    columns than asked are padded with "O" so a missing annotator never shifts the others (and an
    untagged token list reads as all "O"); a line with more columns than asked, or a tag that is
    not BIO (``O``, ``B-<type>``, ``I-<type>``), raises ``DataFileError`` with its line.
    """
    sentences: list[tuple[list[str], ...]] = []
    cur: list[list[str]] = [[] for _ in range(columns + 1)]
    lineno = 0
    with open(path, encoding="utf-8") as fh, _utf8(path, lambda: lineno + 1):
        for lineno, line in enumerate(fh, 1):
            parts = line.split()
            if not parts:
                if cur[0]:
                    sentences.append(tuple(cur))
                    cur = [[] for _ in range(columns + 1)]
                continue
            if len(parts) > columns + 1:
                raise DataFileError(path, lineno, f"{len(parts) - 1} tag columns, expected at most {columns} "
                                    f"(a token with spaces, or a file with more annotators?): {line.strip()[:80]!r}")
            for tag in parts[1:]:
                if not BIO_TAG.match(tag):
                    raise DataFileError(path, lineno, f"tag {tag[:40]!r} is not BIO (O, B-<type>, I-<type>)")
            cur[0].append(parts[0])
            for c in range(columns):
                cur[c + 1].append(parts[c + 1] if len(parts) > c + 1 else "O")
    if cur[0]:
        sentences.append(tuple(cur))
    return sentences


def news_labels(path: str | Path) -> list[str] | None:
    """The categories of a MasakhaNEWS split from the ``labels.txt`` beside it, if there is one."""
    p = Path(path).with_name("labels.txt")
    if not p.is_file():
        return None
    return [ln.strip() for ln in p.read_text(encoding="utf-8").splitlines() if ln.strip()]


def read_news_tsv(path: str | Path, labels: Sequence[str] | None = None) -> tuple[list[str], list[str]]:
    """MasakhaNEWS ``category, headline, text, url`` rows -> (texts, labels); text = headline + body.

    Read as CSV with tab delimiters and standard quoting: several languages' files quote fields
    that span lines or hold ``"``. Every row must have the header's number of fields and a
    category from ``labels`` (default: ``labels.txt`` next to the file, when present; otherwise a
    category must at least be one word); anything else raises ``DataFileError`` with the line the
    record starts on.
    """
    allowed = set(labels) if labels is not None else (set(news_labels(path) or ()) or None)
    texts, cats = [], []
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_MINIMAL, strict=True)
        start = 1
        try:
            with _utf8(path, lambda: start):
                header = next(reader, None)
                if header is None:
                    raise DataFileError(path, None, "empty file (expected a header: category, headline, text, url)")
                missing = [c for c in NEWS_COLUMNS if c not in header]
                if missing:
                    raise DataFileError(path, 1, f"header {header[:6]} lacks column(s) {', '.join(missing)}")
                col = {c: header.index(c) for c in NEWS_COLUMNS}
                start = reader.line_num + 1
                for row in reader:
                    if not row:  # a blank line between records
                        start = reader.line_num + 1
                        continue
                    if len(row) != len(header):
                        raise DataFileError(path, start, f"{len(row)} fields, the header has {len(header)} "
                                            "(an unquoted tab or quote in a field?)")
                    cat = row[col["category"]].strip()
                    if allowed is not None and cat not in allowed:
                        raise DataFileError(path, start, f"category {cat[:60]!r} is not in labels.txt "
                                            f"({', '.join(sorted(allowed))})")
                    if not cat or len(cat.split()) != 1:
                        raise DataFileError(path, start, f"category {cat[:60]!r} is not a label")
                    texts.append(f"{row[col['headline']]}\n{row[col['text']]}")
                    cats.append(cat)
                    start = reader.line_num + 1
        except csv.Error as e:
            raise DataFileError(path, start, f"not valid TSV: {e}") from None
    return texts, cats


def read_aux_corpora(paths: Sequence[str | Path], labels: Sequence[str],
                     max_sentences: int | None = None, seed: int = 0
                     ) -> tuple[list[list[str]], list[list[str]]]:
    """Labelled sentences of *other* corpora (CoNLL files, e.g. MasakhaNER of related languages)
    for a project whose entity types are ``labels``: (tokens, BIO tags) lists.

    Why: a low-resource project rarely starts from nothing - public corpora of neighbouring
    languages share entity types, name spellings and contexts (MasakhaNER's pcm, ibo and yor news
    name the people and places hau news does), so training on them beside the project's own labels
    is the prior a pretrained backbone would otherwise bring. Entity types the project does not
    have become ``O``, so the model never learns a label the project cannot show; a corpus with
    none of the project's types is an error, not silent noise. ``max_sentences`` keeps a seeded
    random sample (retraining time grows with every sentence).
    """
    X: list[list[str]] = []
    Y: list[list[str]] = []
    known = set(labels)
    for p in paths:
        path = Path(p)
        if not path.is_file():
            raise FileNotFoundError(f"auxiliary corpus {path} does not exist")
        sents = [(list(t), list(y)) for t, y in read_conll(path) if t]
        types = {tag[2:] for _, y in sents for tag in y if tag != "O"}
        if not types & known:
            raise ValueError(f"auxiliary corpus {path} has entity types {sorted(types)}, none of "
                             f"the project's {sorted(known)}")
        for toks, tags in sents:
            X.append(toks)
            Y.append([t if t == "O" or t[2:] in known else "O" for t in tags])
    if max_sentences is not None and len(X) > max_sentences:
        import random
        keep = sorted(random.Random(seed).sample(range(len(X)), max_sentences))
        X, Y = [X[i] for i in keep], [Y[i] for i in keep]
    return X, Y
