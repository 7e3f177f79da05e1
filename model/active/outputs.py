"""What the strategies read: model outputs over a pool, computed lazily and cached.

Why lazy: the backend re-scores up to 10,000 tasks after each retrain with ONE strategy. Least
confidence needs only marginals; BALD needs ten MC-dropout passes (ten times the inference);
diversity needs embeddings; disagreement needs the LLM's spans. Each field is a value or a
zero-argument callable, called on first access only, so a strategy pays only for what it reads.

Token-level quantities are kept *flat*: all real tokens of all items concatenated into one
``(n_tokens, n_tags)`` matrix plus per-item lengths. There is no padding anywhere, so no padding
position can leak into an uncertainty score (weakness 1 of the reference code), and per-item
aggregates are single vectorised ``reduceat`` calls. A text classifier's ``(n, C)`` probabilities
are the same structure with every length 1; a multi-label classifier's item becomes C binary
"tokens" ``[1 - p_c, p_c]``.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from model.active.errors import MissingOutputError

_EPS = 1e-12


def _pack(arrays: Sequence[np.ndarray], axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate per-item arrays along their token axis; returns (flat, lengths)."""
    lengths = np.array([a.shape[axis] for a in arrays], dtype=np.int64)
    if len(arrays) == 0:
        return np.zeros((0, 0)), lengths
    return np.concatenate([np.asarray(a, dtype=np.float64) for a in arrays], axis=axis), lengths


def segment_reduce(values: np.ndarray, lengths: np.ndarray, how: str,
                   empty: float = 0.0) -> np.ndarray:
    """Per-item ``max``/``min``/``sum``/``mean`` of flat token ``values``; ``empty`` for length 0.

    ``np.ufunc.reduceat`` returns the element *at* the offset for an empty segment instead of the
    identity, so empty items are reduced over a dummy and then overwritten.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    out = np.full(lengths.size, float(empty))
    nonempty = lengths > 0
    if not nonempty.any():
        return out
    starts = (np.cumsum(lengths) - lengths)[nonempty]
    ufunc = {"max": np.maximum, "min": np.minimum, "sum": np.add, "mean": np.add}[how]
    red = ufunc.reduceat(values, starts)
    if how == "mean":
        red = red / lengths[nonempty]
    out[nonempty] = red
    return out


class ModelOutputs:
    """Model outputs for ``n`` pool items; each keyword is a value or a zero-arg callable.

    Keywords (all optional; a strategy that needs a missing one raises MissingOutputError):
      marginals:      list of ``(len_i, n_tags)`` per-token tag distributions (NER)
      probabilities:  ``(n, C)`` class probabilities (text classification)
      multi_label:    with ``probabilities``: columns are independent per-class probabilities
      seq_log_proba:  ``(n,)`` log-probability of each item's best tag sequence; defaults to the
                      sum of per-token log max-marginals (exact for independent tokens)
      mc_marginals:   list of ``(S, len_i, n_tags)`` MC-dropout samples (or ``(S, n, C)``)
      embeddings:     ``(n, d)`` item representations for diversity
      llm_spans / model_spans: per item, spans ``(start, end, label, score)`` or ``Span`` objects
      llm_consistency: ``(n,)`` LLM self-consistency in [0, 1] (agreement across repeated calls)
    """

    def __init__(self, n: int, **fields: Any):
        known = {"marginals", "probabilities", "multi_label", "seq_log_proba", "mc_marginals",
                 "embeddings", "llm_spans", "model_spans", "llm_consistency"}
        unknown = set(fields) - known
        if unknown:
            raise ValueError(f"unknown output fields {sorted(unknown)}; expected {sorted(known)}")
        self.n = int(n)
        self._src = {k: v for k, v in fields.items() if v is not None}
        self._cache: dict[str, Any] = {}

    # --- constructors -------------------------------------------------------------------------
    @classmethod
    def from_marginals(cls, marginals: Sequence[np.ndarray], **fields: Any) -> ModelOutputs:
        return cls(len(marginals), marginals=list(marginals), **fields)

    @classmethod
    def from_probabilities(cls, probabilities: np.ndarray, multi_label: bool = False,
                           **fields: Any) -> ModelOutputs:
        p = np.asarray(probabilities, dtype=np.float64)
        return cls(p.shape[0], probabilities=p, multi_label=multi_label, **fields)

    @classmethod
    def from_tagger(cls, tagger: Any, X: Sequence[Sequence[str]], *, mc_samples: int = 10,
                    seed: int = 0, **fields: Any) -> ModelOutputs:
        """Lazy outputs of a fitted ``NERTagger`` (or anything with the same methods) on ``X``."""
        X = list(X)
        lazy: dict[str, Any] = {
            "marginals": lambda: tagger.predict_marginals(X),
            "mc_marginals": (lambda: tagger.mc_dropout_marginals(X, n_samples=mc_samples, seed=seed))
            if hasattr(tagger, "mc_dropout_marginals") else None,
            "embeddings": (lambda: tagger.embed(X)) if hasattr(tagger, "embed") else None,
            "seq_log_proba": (lambda: tagger.sequence_log_proba(X))
            if hasattr(tagger, "sequence_log_proba") else None,
            "model_spans": (lambda: tagger.predict_spans(X))
            if hasattr(tagger, "predict_spans") else None,
        }
        lazy.update(fields)
        return cls(len(X), **lazy)

    @classmethod
    def from_classifier(cls, clf: Any, texts: Sequence[str], *, multi_label: bool = False,
                        **fields: Any) -> ModelOutputs:
        """Lazy outputs of a fitted ``TextClassifier`` on ``texts``."""
        texts = list(texts)
        lazy: dict[str, Any] = {
            "probabilities": lambda: np.asarray(clf.predict_proba(texts), dtype=np.float64),
            "embeddings": (lambda: clf.embed(texts)) if hasattr(clf, "embed") else None,
        }
        lazy.update(fields)
        return cls(len(texts), multi_label=multi_label, **lazy)

    # --- raw access ---------------------------------------------------------------------------
    def has(self, name: str) -> bool:
        return name in self._cache or name in self._src

    def get(self, name: str) -> Any:
        """The field ``name``, computing it on first access."""
        if name not in self._cache:
            if name not in self._src:
                raise MissingOutputError(f"this strategy needs model output {name!r}, which was "
                                         f"not provided (have: {sorted(self._src)})")
            v = self._src[name]
            self._cache[name] = v() if callable(v) else v
        return self._cache[name]

    # --- derived, vectorised views ------------------------------------------------------------
    def _memo(self, key: str, fn: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = fn()
        return self._cache[key]

    @property
    def token_probs(self) -> tuple[np.ndarray, np.ndarray]:
        """``(flat (n_tokens, n_tags), lengths (n,))`` over real tokens only."""
        return self._memo("_flat", self._flatten)

    def _flatten(self) -> tuple[np.ndarray, np.ndarray]:
        if self.has("marginals"):
            flat, lengths = _pack(self.get("marginals"))
        elif self.has("probabilities"):
            p = np.asarray(self.get("probabilities"), dtype=np.float64)
            if self._src.get("multi_label"):
                pc = p.reshape(-1)
                flat = np.stack([1.0 - pc, pc], axis=1)
                lengths = np.full(p.shape[0], p.shape[1], dtype=np.int64)
            else:
                flat, lengths = p, np.ones(p.shape[0], dtype=np.int64)
        else:
            raise MissingOutputError("needs 'marginals' (NER) or 'probabilities' (classifier)")
        if lengths.size != self.n:
            raise ValueError(f"outputs cover {lengths.size} items, expected {self.n}")
        return flat, lengths

    @property
    def lengths(self) -> np.ndarray:
        return self.token_probs[1]

    @property
    def sequence_log_proba(self) -> np.ndarray:
        """Log-probability of each item's most likely labelling, ``(n,)``; 0 for empty items."""
        def compute() -> np.ndarray:
            if self.has("seq_log_proba"):
                return np.asarray(self.get("seq_log_proba"), dtype=np.float64).reshape(-1)
            flat, lengths = self.token_probs
            logmax = (np.log(np.clip(flat.max(axis=1), _EPS, 1.0)) if flat.shape[0]
                      else np.zeros(0))
            return segment_reduce(logmax, lengths, "sum")
        return self._memo("_seq_lp", compute)

    @property
    def mc_token_probs(self) -> np.ndarray:
        """MC-dropout samples, flat: ``(S, n_tokens, n_tags)`` aligned with :attr:`token_probs`."""
        def compute() -> np.ndarray:
            raw = self.get("mc_marginals")
            if isinstance(raw, np.ndarray) and raw.ndim == 3 and not self.has("marginals"):
                return raw.astype(np.float64)  # classifier: (S, n, C) is already flat
            flat, lengths = _pack(list(raw), axis=1)
            if not np.array_equal(lengths, self.lengths):
                raise ValueError("MC-dropout samples and marginals disagree on item lengths")
            return flat
        return self._memo("_mc", compute)

    @property
    def embeddings(self) -> np.ndarray:
        return self._memo("_emb", lambda: np.asarray(self.get("embeddings"), dtype=np.float64))
