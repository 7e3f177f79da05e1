"""Random sampling and the diversity-aware batch step."""
import numpy as np

from model.active import DiverseBatch, LeastConfidence, ModelOutputs, RandomSampling
from tests.model.active.contract import StrategyContract


class TestRandomContract(StrategyContract):
    def make_strategy(self):
        return RandomSampling(seed=3)


class TestDiverseKMeansContract(StrategyContract):
    def make_strategy(self):
        return DiverseBatch(LeastConfidence(), method="kmeans", candidates=3, queue_batch=5)


class TestDiverseCoresetContract(StrategyContract):
    def make_strategy(self):
        return DiverseBatch(LeastConfidence(), method="coreset", candidates=3, queue_batch=5)


def test_random_is_seeded_and_uniform():
    out = ModelOutputs.from_probabilities(np.full((1000, 2), 0.5))
    a = RandomSampling(seed=1).query(out, np.arange(1000), 10, rng=np.random.default_rng(5))
    b = RandomSampling(seed=1).query(out, np.arange(1000), 10, rng=np.random.default_rng(5))
    c = RandomSampling(seed=1).query(out, np.arange(1000), 10, rng=np.random.default_rng(6))
    assert a.tolist() == b.tolist() and a.tolist() != c.tolist()
    big = RandomSampling().query(out, np.arange(1000), 500, rng=np.random.default_rng(0))
    assert 200 < (big < 500).sum() < 300  # not biased to the front of the pool


def _two_clusters():
    """Items 0-9: a tight cluster, slightly MORE uncertain; 10-19: another tight cluster."""
    rng = np.random.default_rng(0)
    emb = np.vstack([rng.normal([5, 0], 0.01, (10, 2)), rng.normal([0, 5], 0.01, (10, 2))])
    top = np.r_[np.linspace(0.50, 0.55, 10), np.linspace(0.60, 0.65, 10)]  # lower = less sure
    probs = np.stack([top, 1 - top], axis=1)
    return ModelOutputs.from_probabilities(probs, embeddings=emb)


def test_plain_uncertainty_takes_one_cluster_diverse_batch_spans_both():
    out = _two_clusters()
    plain = LeastConfidence().query(out, np.arange(20), 2)
    assert set(plain.tolist()) <= set(range(10))  # two near-duplicates
    km = DiverseBatch(LeastConfidence(), "kmeans", candidates=10).query(
        out, np.arange(20), 2, rng=np.random.default_rng(0))
    assert {int(i) // 10 for i in km} == {0, 1}
    assert 0 in km.tolist()  # the most useful item of its cluster


def test_coreset_avoids_the_region_already_labelled():
    out = _two_clusters()
    q = DiverseBatch(LeastConfidence(), "coreset", candidates=10).query(
        out, np.arange(2, 20), 1, indices_labeled=np.array([0, 1]))
    assert q[0] >= 10  # cluster A is covered by the labelled items 0 and 1


def test_queue_serves_a_diverse_batch_first():
    out = _two_clusters()
    from model.active import queue_scores
    q = queue_scores(DiverseBatch(LeastConfidence(), queue_batch=2, candidates=10), out)
    first_two = np.argsort(q)[:2]
    assert {int(i) // 10 for i in first_two} == {0, 1}


def test_unknown_method_is_rejected():
    import pytest
    with pytest.raises(ValueError, match="kmeans"):
        DiverseBatch(LeastConfidence(), method="dbscan").query(_two_clusters(), np.arange(20), 2)
