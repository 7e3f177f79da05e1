"""Which LLM-labelled tasks may skip human review.

Rule: auto-accept a task's LLM labels when the LLM is self-consistent on it (``consistency >=
t1``: repeated calls gave the same spans) AND the independent local model agrees with it
(``agreement >= t2``: strict span F1). Two weak, fairly independent signals agreeing is far
stronger evidence than either alone; the paper's LLM labels were ~0.86 token-accurate, so
accepting all of them caps the model, while reviewing all of them forfeits the savings.

The thresholds should not be guessed: :func:`fit_thresholds` derives them from the live agreement
figures of tasks a human has already reviewed (the LLM's quality against the human label), as the
loosest pair whose accepted tasks still reach the target quality on enough support.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from model.active.disagreement import span_agreement

__all__ = ["RoutingPolicy", "route", "fit_thresholds", "fit_thresholds_per_dollar"]


@dataclass(frozen=True)
class RoutingPolicy:
    """Thresholds plus the evidence they were fitted on (None when set by hand)."""

    min_consistency: float = 0.9
    min_agreement: float = 1.0
    est_quality: float | None = None   # mean LLM quality of accepted reviewed tasks
    coverage: float | None = None      # share of reviewed tasks that would be accepted
    support: int = 0                   # number of reviewed tasks accepted under this policy

    @classmethod
    def never(cls, support: int = 0) -> RoutingPolicy:
        """Accepts nothing: the safe policy until enough reviewed tasks exist."""
        return cls(math.inf, math.inf, None, 0.0, support)

    @property
    def accepts_nothing(self) -> bool:
        return math.isinf(self.min_consistency) or math.isinf(self.min_agreement)

    def accept(self, consistency: np.ndarray | Sequence[float],
               agreement: np.ndarray | Sequence[float]) -> np.ndarray:
        c = np.asarray(consistency, dtype=np.float64)
        a = np.asarray(agreement, dtype=np.float64)
        if c.shape != a.shape:
            raise ValueError(f"consistency {c.shape} and agreement {a.shape} differ in shape")
        return (c >= self.min_consistency) & (a >= self.min_agreement)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("min_consistency", "min_agreement"):
            d[k] = None if math.isinf(d[k]) else d[k]
        return d


def route(llm_spans: Sequence[Sequence[Any]], model_spans: Sequence[Sequence[Any]],
          consistency: np.ndarray | Sequence[float], policy: RoutingPolicy
          ) -> tuple[np.ndarray, np.ndarray]:
    """``(auto_accept mask, agreement)`` for each task; agreement = strict span F1 LLM vs model."""
    if not (len(llm_spans) == len(model_spans) == len(consistency)):
        raise ValueError("llm_spans, model_spans and consistency must have equal lengths")
    agreement = np.array([span_agreement(a, b) for a, b in zip(llm_spans, model_spans)])
    return policy.accept(consistency, agreement), agreement


def fit_thresholds(consistency: np.ndarray | Sequence[float],
                   agreement: np.ndarray | Sequence[float],
                   llm_quality: np.ndarray | Sequence[float], target_quality: float = 0.95,
                   min_support: int = 20) -> RoutingPolicy:
    """The policy accepting the most reviewed tasks whose mean ``llm_quality`` >= target.

    ``llm_quality`` is, per reviewed task, how good the LLM labels were against the human's (strict
    span F1, or 1/0 for exact match). Candidate thresholds are the observed values; a policy must
    accept at least ``min_support`` reviewed tasks to count. With too little evidence, or none
    good enough, returns :meth:`RoutingPolicy.never` - nothing is auto-accepted.
    """
    c = np.asarray(consistency, dtype=np.float64)
    a = np.asarray(agreement, dtype=np.float64)
    q = np.asarray(llm_quality, dtype=np.float64)
    if not (c.shape == a.shape == q.shape):
        raise ValueError("consistency, agreement and llm_quality must have equal shapes")
    if c.size < min_support:
        return RoutingPolicy.never(support=0)
    best: RoutingPolicy | None = None
    for t1, t2, acc, k in _threshold_pairs(c, a, min_support):
        quality = float(q[acc].mean())
        if quality < target_quality:
            continue
        cand = RoutingPolicy(t1, t2, quality, k / c.size, k)
        # most coverage; then the stricter pair (same tasks accepted, safer on new ones)
        if best is None or (k, t1 + t2) > (best.support, best.min_consistency
                                           + best.min_agreement):
            best = cand
    return best if best is not None else RoutingPolicy.never(support=0)


def _threshold_pairs(c: np.ndarray, a: np.ndarray, min_support: int):
    """Every observed (consistency, agreement) threshold pair accepting at least ``min_support``
    of the evidence: ``(t1, t2, accepted mask, accepted count)``; both fitting rules search these."""
    for t1 in np.unique(c):
        for t2 in np.unique(a):
            acc = (c >= t1) & (a >= t2)
            k = int(acc.sum())
            if k >= min_support:
                yield float(t1), float(t2), acc, k


def fit_thresholds_per_dollar(consistency: np.ndarray | Sequence[float],
                              agreement: np.ndarray | Sequence[float],
                              llm_quality: np.ndarray | Sequence[float],
                              review_cost: np.ndarray | Sequence[float], llm_cost: float,
                              wrong_penalty: float = 1.0, min_support: int = 20) -> RoutingPolicy:
    """The policy with the most expected label value per dollar on the reviewed tasks.

    Rule. Every queried task costs ``llm_cost`` (the LLM labels it whatever happens). A task the
    policy accepts keeps the LLM labels, whose value is ``q - wrong_penalty * (1 - q)`` for its
    LLM quality ``q`` (strict span F1 vs the human): the right share teaches, the wrong share
    un-teaches (``wrong_penalty`` 1: a wrong span undoes a right one; 0: plain quality per
    dollar, which accepts nearly everything because an LLM label is so cheap). A task it rejects
    is reviewed by a human at ``review_cost`` (its price under the cost model: cheaper when the
    LLM was right) and has value 1. Over the reviewed tasks (the evidence) the rule maximises
    ``mean value / mean cost`` among "accept nothing" and every observed threshold pair that
    accepts at least ``min_support`` tasks (ties: the stricter pair). With fewer than
    ``min_support`` reviewed tasks it returns :meth:`RoutingPolicy.never`.

    Unlike :func:`fit_thresholds` (a fixed quality target), this trades quality for money: with a
    good, cheap LLM it accepts widely, with a poor one it reviews everything. The evidence only
    grows from rejected tasks, as in :func:`fit_thresholds`.
    """
    c = np.asarray(consistency, dtype=np.float64)
    a = np.asarray(agreement, dtype=np.float64)
    q = np.asarray(llm_quality, dtype=np.float64)
    r = np.asarray(review_cost, dtype=np.float64)
    if not (c.shape == a.shape == q.shape == r.shape):
        raise ValueError("consistency, agreement, llm_quality and review_cost must have equal "
                         "shapes")
    if c.size < min_support:
        return RoutingPolicy.never(support=0)
    value_llm = q - wrong_penalty * (1.0 - q)

    def per_dollar(acc: np.ndarray) -> float:
        value = np.where(acc, value_llm, 1.0).mean()
        cost = llm_cost + np.where(acc, 0.0, r).mean()
        return float(value / cost) if cost > 0 else math.inf

    best, best_v = RoutingPolicy.never(support=0), per_dollar(np.zeros(c.shape, dtype=bool))
    for t1, t2, acc, k in _threshold_pairs(c, a, min_support):
        v = per_dollar(acc)
        stricter = best.accepts_nothing or t1 + t2 > best.min_consistency + best.min_agreement
        if v > best_v + 1e-12 or (abs(v - best_v) <= 1e-12 and not best.accepts_nothing
                                  and stricter):
            best, best_v = RoutingPolicy(t1, t2, float(q[acc].mean()), k / c.size, k), v
    return best
