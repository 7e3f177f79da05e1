"""Few-shot examples: the k most similar human-accepted annotations of the project.

Similarity is cosine over hashed character 2-4-grams (``char_wb``): no fitting, no vocabulary,
robust to the rich morphology and tone-mark variants of the target languages, and cheap enough
to run per request over thousands of candidates. When the project has no accepted annotations
yet, a static examples file (``LLM_FEWSHOT_FILE``: CoNLL, MasakhaNEWS TSV or JSONL) is used.
A file whose name says it is a test split is refused: few-shot examples taken from the test
data inflate every score measured on it (a weakness of the paper's reference code).
"""
from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import HashingVectorizer

from model.conll import BIO_TAG, DataFileError, read_conll, read_news_tsv
from model.tokenize import join_tokens, spans_to_bio, tokenize
from model.types import Example, Span

K_NER = 2
K_CLS = 2
_VEC = HashingVectorizer(analyzer="char_wb", ngram_range=(2, 4), n_features=2 ** 18,
                         alternate_sign=False, norm="l2")


def check_examples_file(path: str | Path) -> Path:
    """Refuse a test split or a missing file (``ValueError``), before any annotation starts."""
    p = Path(path)
    if "test" in p.stem.lower():
        raise ValueError(f"LLM_FEWSHOT_FILE={p.name!r} looks like a test split; few-shot "
                         "examples must never come from test data")
    if not p.is_file():
        raise ValueError(f"LLM_FEWSHOT_FILE={str(p)!r} does not exist")
    return p


def load_examples(path: str | Path) -> list[Example]:
    """Examples from a static file; raises ``ValueError`` for a test split."""
    p = check_examples_file(path)
    if p.suffix == ".jsonl":
        out = []
        try:
            text = p.read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            line = p.read_bytes()[:e.start].count(b"\n") + 1
            raise DataFileError(p, line, f"not UTF-8 text ({e.reason})") from None
        for lineno, line in enumerate(text.splitlines(), 1):
            if line.strip():
                out.append(_jsonl_example(p, lineno, line))
        return out
    if p.suffix == ".tsv":
        texts, labels = read_news_tsv(p)
        return [Example(t, [], [lab]) for t, lab in zip(texts, labels)]
    out = []
    for toks, tags in read_conll(p):
        text, tokens = join_tokens(toks)
        out.append(Example(text, _tags_to_spans(tokens, tags)))
    return out


def _jsonl_example(path: Path, lineno: int, line: str) -> Example:
    """One JSONL line: ``{"tokens": [...], "tags": [...]}`` (BIO, one tag per token) or
    ``{"text": "...", "spans": [[start, end, label], ...]}``, either with optional ``"choices"``.
    Anything else raises ``DataFileError`` naming the file and line, so a broken examples file
    stops the run instead of prompting the LLM with garbage."""
    def bad(problem: str) -> DataFileError:
        return DataFileError(path, lineno, problem)

    try:
        d = json.loads(line)
    except ValueError as e:
        raise bad(f"not valid JSON ({e})") from None
    if not isinstance(d, dict):
        raise bad(f"expected a JSON object, got {type(d).__name__}")
    choices = d.get("choices", [])
    if not isinstance(choices, list) or not all(isinstance(c, str) and c for c in choices):
        raise bad('"choices" must be a list of non-empty strings')
    if "tokens" in d:
        toks, tags = d["tokens"], d.get("tags", [])
        if not isinstance(toks, list) or not toks or not all(isinstance(t, str) and t.strip() for t in toks):
            raise bad('"tokens" must be a non-empty list of non-empty strings')
        if not isinstance(tags, list) or (tags and len(tags) != len(toks)):
            raise bad(f'"tags" must be a list with one tag per token ({len(toks)})')
        wrong = [t for t in tags if not isinstance(t, str) or not BIO_TAG.match(t)]
        if wrong:
            raise bad(f"tag {str(wrong[0])[:40]!r} is not BIO (O, B-<type>, I-<type>)")
        text, tokens = join_tokens(toks)
        return Example(text, _tags_to_spans(tokens, tags), choices)
    text = d.get("text")
    if not isinstance(text, str) or not text.strip():
        raise bad('expected "tokens" (with "tags") or a non-empty string "text"')
    raw = d.get("spans", [])
    if not isinstance(raw, list):
        raise bad('"spans" must be a list of [start, end, label]')
    spans = []
    for s in raw:
        if not (isinstance(s, list) and len(s) == 3 and all(type(x) is int for x in s[:2])
                and isinstance(s[2], str) and s[2] and 0 <= s[0] < s[1] <= len(text)):
            raise bad(f"span {str(s)[:60]} is not [start, end, label] with 0 <= start < end <= {len(text)}")
        spans.append(Span(s[0], s[1], s[2]))
    return Example(text, spans, choices)


def _tags_to_spans(tokens, tags) -> list[Span]:
    from model.tokenize import bio_to_spans
    return bio_to_spans(tokens, tags)


@functools.lru_cache(maxsize=4)
def _static_pool(path: str):
    """Loaded and vectorised once per process (a MasakhaNER train file takes a few seconds)."""
    pool = load_examples(path)
    return pool, (_VEC.transform([e.text for e in pool]) if pool else None)


class FewShotSelector:
    def __init__(self, static_file: str | None = None) -> None:
        self.static_file = static_file

    def _pool(self, examples: Sequence[Example]):
        if examples:
            return list(examples), _VEC.transform([e.text for e in examples])
        if not self.static_file:
            return [], None
        return _static_pool(str(self.static_file))

    def _nearest(self, query: str, pool: list[Example], vecs, k: int, keep) -> list[Example]:
        if not pool or k <= 0:
            return []
        sims = vecs @ _VEC.transform([query]).toarray().ravel()
        picked = []
        for i in np.argsort(-sims, kind="stable"):
            if keep(pool[i]) and pool[i].text.strip() != query.strip():
                picked.append(pool[i])
                if len(picked) == k:
                    break
        return picked

    def ner(self, text: str, labels: Sequence[str], examples: Sequence[Example] = (),
            k: int = K_NER) -> list[tuple[list[str], list[str]]]:
        """(tokens, BIO tags) of the k nearest examples that contain an entity of ``labels``."""
        pool, vecs = self._pool(examples)
        keep = (lambda e: any(s.label in labels for s in e.spans))
        out = []
        for ex in self._nearest(text, pool, vecs, k, keep):
            toks = tokenize(ex.text)
            tags = spans_to_bio(toks, [s for s in ex.spans if s.label in labels])
            out.append(([t.text for t in toks], tags))
        return out

    def cls(self, text: str, choices: Sequence[str], examples: Sequence[Example] = (),
            k: int = K_CLS) -> list[tuple[str, list[str]]]:
        pool, vecs = self._pool(examples)
        keep = (lambda e: bool(e.choices) and all(c in choices for c in e.choices))
        return [(e.text, list(e.choices)) for e in self._nearest(text, pool, vecs, k, keep)]
