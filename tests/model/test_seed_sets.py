"""The simulation's seed sets come from the one sampler module (``model.sampling``): the paper's
entity-rich sample, filled up at random when too few sentences qualify, or a plain random draw."""
import numpy as np
import pytest

from model.sampling import entity_share
from model.simulation.data import Data
from model.simulation.loop import Config, _seed_set


def _sentence(n_tokens, n_entities):
    return ["B-PER"] * n_entities + ["O"] * (n_tokens - n_entities)


def _data(tags):
    return Data("ner", [["w"] * len(t) for t in tags], tags, [], [], ["PER"])


def test_entity_rich_seed_set_is_the_papers_sample():
    tags = ([_sentence(10, 0)] * 50 + [_sentence(10, 8)] * 50          # ineligible
            + [_sentence(20, k) for k in range(2, 10) for _ in range(20)])  # 10 %..45 %
    idx = _seed_set(Config(seed_size=60, seed_sampler="entity-rich"), _data(tags), seed=42)
    assert len(set(idx.tolist())) == 60
    assert all(0.05 < entity_share(tags[i]) < 0.5 for i in idx)
    counts = np.array([sum(t != "O" for t in tags[i]) for i in idx])
    assert ((counts >= 4) & (counts <= 7)).mean() > 0.5  # the middle of the ranking dominates
    again = _seed_set(Config(seed_size=60, seed_sampler="entity-rich"), _data(tags), seed=42)
    assert again.tolist() == idx.tolist()


def test_entity_rich_fills_up_when_too_few_qualify_and_refuses_more_than_the_pool():
    tags = [_sentence(10, 0)] * 20 + [_sentence(10, 2)] * 3
    idx = _seed_set(Config(seed_size=10, seed_sampler="entity-rich"), _data(tags), seed=0)
    assert len(set(idx.tolist())) == 10 and {20, 21, 22} <= set(idx.tolist())
    with pytest.raises(ValueError, match="pool of 23"):
        _seed_set(Config(seed_size=24, seed_sampler="entity-rich"), _data(tags), seed=0)


def test_random_seed_set_is_the_draw_the_recorded_runs_used():
    """The random seed sets of benchmarks/results are ``default_rng(seed).choice(n, k)``."""
    tags = [_sentence(10, 1)] * 500
    idx = _seed_set(Config(seed_size=100), _data(tags), seed=3)
    assert idx.tolist() == np.random.default_rng(3).choice(500, size=100, replace=False).tolist()
