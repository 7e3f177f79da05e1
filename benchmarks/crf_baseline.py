"""The reference CRF of ``shared/README.md``: sklearn-crfsuite's CRF (python-crfsuite), word-shape
and +-2 context features, L-BFGS with c1 = c2 = 0.1, 100 iterations.

It is the baseline every NER figure in this repo is printed beside (measured in the same run), so
it is kept deliberately plain: the served ``CRFSuiteTagger`` without the word classes it learns
from a project's raw text. One CRF class, defined once in ``model.ner.crfsuite``.
"""
from __future__ import annotations

from model.ner.crfsuite import CRFSuiteTagger


class CRFBaseline(CRFSuiteTagger):
    """``CRFSuiteTagger`` with the reference settings and no word classes."""

    def __init__(self, c1: float = 0.1, c2: float = 0.1, max_iterations: int = 100):
        super().__init__(clusters=None, c1=c1, c2=c2, max_iterations=max_iterations)
