"""The reference CRF of ``shared/README.md``: sklearn-crfsuite, word-shape and +-2 context
features, L-BFGS with c1 = c2 = 0.1, 100 iterations.

It is the baseline every NER figure in this repo is printed beside (measured in the same run),
so it is kept deliberately plain: the classic CoNLL feature set, nothing tuned on MasakhaNER.
"""
from __future__ import annotations

from collections.abc import Sequence

import sklearn_crfsuite


def _word_features(word: str) -> dict[str, object]:
    return {
        "lower": word.lower(),
        "suffix3": word[-3:],
        "suffix2": word[-2:],
        "prefix3": word[:3],
        "is_upper": word.isupper(),
        "is_title": word.istitle(),
        "is_digit": word.isdigit(),
        "has_digit": any(c.isdigit() for c in word),
        "has_hyphen": "-" in word,
        "shape": _shape(word),
    }


def _shape(word: str) -> str:
    """Short word shape: runs of the same class collapsed (``Kano`` -> ``Xx``, ``2021`` -> ``d``)."""
    out: list[str] = []
    for c in word:
        k = "X" if c.isupper() else "x" if c.isalpha() else "d" if c.isdigit() else c
        if not out or out[-1] != k:
            out.append(k)
    return "".join(out)


def sentence_features(sent: Sequence[str]) -> list[dict[str, object]]:
    """Features of each token: its own, plus lower/title/upper/shape of the tokens at -2..+2."""
    feats = []
    n = len(sent)
    base = [_word_features(w) for w in sent]
    for i in range(n):
        f: dict[str, object] = {"bias": 1.0, **base[i]}
        for off in (-2, -1, 1, 2):
            j = i + off
            if 0 <= j < n:
                b = base[j]
                f.update({f"{off}:lower": b["lower"], f"{off}:is_title": b["is_title"],
                          f"{off}:is_upper": b["is_upper"], f"{off}:shape": b["shape"]})
            else:
                f[f"{off}:pad"] = True  # sentence boundary (BOS / EOS)
        feats.append(f)
    return feats


class CRFBaseline:
    """fit(X, y) / predict(X) / predict_marginals(X) over token lists and BIO tags."""

    def __init__(self, c1: float = 0.1, c2: float = 0.1, max_iterations: int = 100):
        self.c1, self.c2, self.max_iterations = c1, c2, max_iterations

    def fit(self, X: Sequence[Sequence[str]], y: Sequence[Sequence[str]]) -> "CRFBaseline":
        self.crf_ = sklearn_crfsuite.CRF(algorithm="lbfgs", c1=self.c1, c2=self.c2,
                                         max_iterations=self.max_iterations,
                                         all_possible_transitions=True)
        self.crf_.fit([sentence_features(s) for s in X], [list(t) for t in y])
        return self

    def predict(self, X: Sequence[Sequence[str]]) -> list[list[str]]:
        return [list(p) for p in self.crf_.predict([sentence_features(s) for s in X])]
