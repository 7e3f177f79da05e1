"""The query-strategy contract and its input checks (the package's exceptions: ``errors``).

Modelled on small-text: one abstract method with everything passed in, and the base class
validating the pool for every strategy, so that a strategy never sees an empty pool, a duplicate
index or a request for more items than are left. Two things differ on purpose:

* A strategy reads a :class:`~model.active.outputs.ModelOutputs` rather than calling the model
  itself: the backend computes marginals once per retrain and re-scores every task from them, and
  the outputs object computes only what the chosen strategy asks for.
* ``scores`` is public. Label Studio does not ask us "which n next?"; it serves tasks in order of
  the prediction ``score`` we wrote, so the backend needs a usefulness for *every* task
  (:func:`queue_scores`), while the simulation needs ``query``.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar

import numpy as np

# re-exported: callers import the exceptions from here too
from model.active.errors import ActiveLearningError, EmptyPoolError, MissingOutputError, PoolExhaustedError

if TYPE_CHECKING:  # pragma: no cover
    from model.active.outputs import ModelOutputs

__all__ = ["ActiveLearningError", "EmptyPoolError", "PoolExhaustedError", "MissingOutputError",
           "QueryStrategy", "queue_scores", "validate_pool"]


def validate_pool(indices_unlabeled: np.ndarray | list[int], n: int, n_items: int) -> np.ndarray:
    """Check a query request and return the pool as an int array.

    Raises ``ValueError`` for a non-positive ``n``, indices outside ``[0, n_items)`` or duplicate
    indices (a duplicate would let one task be bought twice), :class:`EmptyPoolError` for an empty
    pool and :class:`PoolExhaustedError` when ``n`` exceeds the pool.
    """
    pool = np.asarray(indices_unlabeled, dtype=np.int64).reshape(-1)
    if int(n) != n or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if pool.size == 0:
        raise EmptyPoolError("the unlabelled pool is empty: nothing left to query")
    if pool.min() < 0 or pool.max() >= n_items:
        raise ValueError(f"pool indices must lie in [0, {n_items}), got "
                         f"[{int(pool.min())}, {int(pool.max())}]")
    if np.unique(pool).size != pool.size:
        raise ValueError("pool indices contain duplicates")
    if n > pool.size:
        raise PoolExhaustedError(f"asked for {n} items but only {pool.size} are unlabelled")
    return pool


def _finite(scores: np.ndarray) -> np.ndarray:
    """NaN (a broken model output) ranks last rather than first or at random."""
    out = np.asarray(scores, dtype=np.float64).copy()
    out[np.isnan(out)] = -np.inf
    return out


class QueryStrategy(ABC):
    """Ranks pool items by usefulness; higher usefulness = label first.

    Subclasses implement :meth:`scores`. ``__init__`` only stores hyper-parameters (sklearn style);
    subclasses needing the labelled set or batch structure override :meth:`query`.
    """

    name: ClassVar[str]
    #: reads the LLM pre-annotations stored on the tasks (the backend then lists tasks with
    #: their predictions, a slower query it skips for every other strategy)
    uses_llm_predictions: ClassVar[bool] = False
    #: ``ModelOutputs`` fields the strategy cannot score without, beyond the model's marginals or
    #: probabilities, so a backend refuses it for a model that lacks one at /setup or start-up
    #: instead of failing at the first re-score after a training
    requires: ClassVar[frozenset[str]] = frozenset()

    @abstractmethod
    def scores(self, outputs: ModelOutputs) -> np.ndarray:
        """Usefulness of every item in ``outputs``, shape ``(outputs.n,)``; higher = label first."""

    def query(self, outputs: ModelOutputs, indices_unlabeled: np.ndarray | list[int], n: int,
              indices_labeled: np.ndarray | list[int] | None = None,
              rng: np.random.Generator | None = None) -> np.ndarray:
        """Positions (into ``outputs``) of the ``n`` most useful unlabelled items, best first.

        Ties are broken by a random permutation from ``rng`` (or by pool order without one), so a
        block of equal scores - all-O sentences early on - is not always taken from the top.
        """
        pool = validate_pool(indices_unlabeled, n, outputs.n)
        s = self.cached_scores(outputs)[pool]
        if rng is not None:
            perm = rng.permutation(pool.size)
            order = perm[np.argsort(-s[perm], kind="stable")]
        else:
            order = np.argsort(-s, kind="stable")
        return pool[order[:n]]

    def cached_scores(self, outputs: ModelOutputs) -> np.ndarray:
        """``scores`` with NaN ranked last, memoised on ``outputs`` per strategy configuration, so
        wrappers and queue values never recompute an expensive ranking (BALD) on one pool."""
        return outputs._memo(f"scores:{self!r}", lambda: _finite(self.scores(outputs)))

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({params})"


def queue_scores(strategy: QueryStrategy, outputs: ModelOutputs) -> np.ndarray:
    """Label Studio queue values in [0, 1]: LOW = label first.

    Label Studio's "Uncertainty sampling" serves the task with the lowest prediction ``score``
    first, so we write ``rank / (n - 1)`` of the usefulness ranking: the most useful task gets 0,
    the least useful 1. Ranks rather than raw usefulness because raw values of different
    strategies live on different scales (entropy in nats, MNLP unbounded) and cluster tightly;
    ties keep task order (stable sort), so re-scoring unchanged outputs is deterministic.
    """
    s = strategy.cached_scores(outputs)
    n = s.size
    if n == 0:
        return np.zeros(0)
    order = np.argsort(-s, kind="stable")
    ranks = np.empty(n, dtype=np.float64)
    ranks[order] = np.arange(n, dtype=np.float64)
    return ranks / (n - 1) if n > 1 else np.zeros(1)
