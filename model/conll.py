"""Readers for the datasets in ``../shared``: CoNLL NER files and MasakhaNEWS TSV files."""
from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path


def read_conll(path: str | Path, columns: int = 1) -> list[tuple[list[str], ...]]:
    """Sentences from a CoNLL file: ``token TAG [TAG ...]`` per line, blank line between sentences.

    Returns one tuple per sentence: ``(tokens, tags_col1[, tags_col2 ...])`` with ``columns`` tag
    columns (MasakhaNER 2.0 has 1; the multi-annotator files have 2 or 3). Lines with fewer tag
    columns than asked are padded with "O" so a missing annotator never shifts the others.
    """
    sentences: list[tuple[list[str], ...]] = []
    cur: list[list[str]] = [[] for _ in range(columns + 1)]
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            parts = line.split()
            if not parts:
                if cur[0]:
                    sentences.append(tuple(cur))
                    cur = [[] for _ in range(columns + 1)]
                continue
            cur[0].append(parts[0])
            for c in range(columns):
                cur[c + 1].append(parts[c + 1] if len(parts) > c + 1 else "O")
    if cur[0]:
        sentences.append(tuple(cur))
    return sentences


def read_news_tsv(path: str | Path) -> tuple[list[str], list[str]]:
    """MasakhaNEWS ``category, headline, text, url`` rows -> (texts, labels); text = headline + body."""
    texts, labels = [], []
    with open(path, encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE):
            texts.append(f"{row['headline']}\n{row['text']}")
            labels.append(row["category"])
    return texts, labels


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
