"""The paper's entity-rich seed sampler."""
import numpy as np
import pytest

from model.active.sampling import entity_rich_sample, random_sample


def _sentence(n_tokens, n_entities):
    return ["B-PER"] * n_entities + ["O"] * (n_tokens - n_entities)


def test_entity_rich_keeps_shares_between_5_and_50_percent_and_favours_the_middle():
    tags = ([_sentence(10, 0)] * 50 + [_sentence(10, 8)] * 50          # ineligible
            + [_sentence(20, k) for k in range(1, 11) for _ in range(20)])  # 5 %..50 %
    idx = entity_rich_sample(tags, 60, np.random.default_rng(42))
    assert len(set(idx.tolist())) == 60
    shares = [sum(t != "O" for t in tags[i]) / len(tags[i]) for i in idx]
    assert all(0.05 <= s <= 0.5 for s in shares)
    counts = np.array([sum(t != "O" for t in tags[i]) for i in idx])
    assert ((counts >= 4) & (counts <= 7)).mean() > 0.5  # middle of the ranking dominates


def test_entity_rich_fills_up_when_too_few_are_eligible():
    tags = [_sentence(10, 0)] * 20 + [_sentence(10, 2)] * 3
    idx = entity_rich_sample(tags, 10, np.random.default_rng(0))
    assert len(set(idx.tolist())) == 10 and {20, 21, 22} <= set(idx.tolist())
    with pytest.raises(ValueError):
        entity_rich_sample(tags, 24, np.random.default_rng(0))
    with pytest.raises(ValueError):
        random_sample(3, 4, np.random.default_rng(0))
