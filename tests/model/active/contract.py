"""Shared contract every query strategy must satisfy (small-text's SamplingStrategiesTests idea).

A strategy's test class subclasses :class:`StrategyContract` and overrides ``make_strategy``;
``make_outputs`` provides every field any strategy reads, with items of varied length including
an empty one.
"""
from __future__ import annotations

import numpy as np
import pytest

from model.active import (ActiveLearningError, EmptyPoolError, ModelOutputs, PoolExhaustedError,
                          QueryStrategy, queue_scores)


def make_outputs(n: int = 30, n_tags: int = 5, seed: int = 0) -> ModelOutputs:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 12, n)
    lengths[3] = 0  # an empty sentence must be handled by every strategy
    marg = [rng.dirichlet(np.full(n_tags, 0.5), size=int(k)) for k in lengths]
    mc = [np.stack([np.clip(m + rng.normal(0, 0.05, m.shape), 1e-3, None) for _ in range(4)])
          for m in marg]
    mc = [s / s.sum(-1, keepdims=True) if s.size else s for s in mc]
    llm = [[(0, 1, "PER", float(rng.random()))] if k % 2 else [] for k in range(n)]
    model = [[(0, 1, "PER", 0.9)] if k % 3 else [] for k in range(n)]
    return ModelOutputs.from_marginals(marg, mc_marginals=mc, embeddings=rng.normal(size=(n, 8)),
                                       llm_spans=llm, model_spans=model)


class StrategyContract:
    def make_strategy(self) -> QueryStrategy:  # pragma: no cover - overridden
        raise NotImplementedError

    def test_scores_one_finite_value_per_item(self):
        out = make_outputs()
        s = self.make_strategy().scores(out)
        assert s.shape == (out.n,)
        assert np.all(np.isfinite(s))

    def test_query_returns_n_distinct_unlabelled_items(self):
        out = make_outputs()
        pool = np.arange(5, 30)
        q = self.make_strategy().query(out, pool, 7, indices_labeled=np.arange(5),
                                       rng=np.random.default_rng(0))
        assert len(q) == 7 and len(set(q.tolist())) == 7
        assert set(q.tolist()) <= set(pool.tolist())

    def test_repeated_queries_deplete_the_pool_without_repeats(self):
        out = make_outputs()
        strategy, pool, taken = self.make_strategy(), np.arange(out.n), []
        rng = np.random.default_rng(1)
        while pool.size:
            q = strategy.query(out, pool, min(8, pool.size), indices_labeled=np.array(taken, int),
                               rng=rng)
            taken += q.tolist()
            pool = np.setdiff1d(pool, q)
        assert sorted(taken) == list(range(out.n))
        with pytest.raises(EmptyPoolError):
            strategy.query(out, pool, 1)

    def test_pool_errors(self):
        out, strategy = make_outputs(), self.make_strategy()
        with pytest.raises(PoolExhaustedError):
            strategy.query(out, np.arange(4), 5)
        with pytest.raises(ActiveLearningError):
            strategy.query(out, [], 1)
        for bad_n in (0, -1):
            with pytest.raises(ValueError):
                strategy.query(out, np.arange(4), bad_n)
        with pytest.raises(ValueError, match="duplicates"):
            strategy.query(out, [1, 1, 2], 1)
        with pytest.raises(ValueError, match="must lie in"):
            strategy.query(out, [0, out.n], 1)

    def test_queue_scores_put_most_useful_first(self):
        out = make_outputs()
        strategy = self.make_strategy()
        q = queue_scores(strategy, out)
        assert q.shape == (out.n,) and q.min() == 0.0 and q.max() == 1.0
        assert len(np.unique(q)) == out.n  # a strict order for Label Studio
        s = strategy.scores(out)
        assert s[np.argmin(q)] == s.max()
        # lower queue value never means lower usefulness
        order = np.argsort(q)
        assert np.all(np.diff(s[order]) <= 1e-12)
