"""Uncertainty strategies on hand-made marginals: documented rankings, real-token handling."""
import numpy as np
import pytest

from model.active import (MNLP, Entropy, EntropyMax, LeastConfidence, Margin, ModelOutputs,
                          TotalEntropy, get_strategy)
from tests.model.active.contract import StrategyContract

SURE = [0.98, 0.01, 0.01]
TIE = [0.5, 0.49, 0.01]        # small margin, moderate least-confidence
FLAT = [0.4, 0.3, 0.3]         # larger margin, but least confident and highest entropy


def outputs(*sentences):
    return ModelOutputs.from_marginals([np.array(s, dtype=float).reshape(-1, 3)
                                        for s in sentences])


class TestLeastConfidenceContract(StrategyContract):
    def make_strategy(self):
        return LeastConfidence()


class TestMarginContract(StrategyContract):
    def make_strategy(self):
        return Margin()


class TestEntropyContract(StrategyContract):
    def make_strategy(self):
        return Entropy()


class TestEntropyMaxContract(StrategyContract):
    def make_strategy(self):
        return EntropyMax()


class TestTotalEntropyContract(StrategyContract):
    def make_strategy(self):
        return TotalEntropy()


class TestMNLPContract(StrategyContract):
    def make_strategy(self):
        return MNLP()


def test_least_confidence_is_one_minus_min_token_max_marginal():
    out = outputs([SURE, SURE], [SURE, FLAT], [TIE])
    np.testing.assert_allclose(LeastConfidence().scores(out), [0.02, 0.6, 0.5])
    assert LeastConfidence().query(out, [0, 1, 2], 3).tolist() == [1, 2, 0]


def test_margin_and_least_confidence_disagree_as_documented():
    out = outputs([TIE], [FLAT])
    assert Margin().query(out, [0, 1], 1).tolist() == [0]           # near tie first
    assert LeastConfidence().query(out, [0, 1], 1).tolist() == [1]  # lowest top marginal first
    assert Entropy().query(out, [0, 1], 1).tolist() == [1]


def test_entropy_mean_vs_max_aggregate():
    # one very hard token in a long sure sentence vs a short, uniformly vague sentence
    one_hard = [SURE] * 9 + [[1 / 3, 1 / 3, 1 / 3]]
    vague = [FLAT, FLAT]
    out = outputs(one_hard, vague)
    assert Entropy().query(out, [0, 1], 1).tolist() == [1]       # mean prefers vague
    assert EntropyMax().query(out, [0, 1], 1).tolist() == [0]    # max prefers the hard token
    h = -np.sum(np.array(FLAT) * np.log(FLAT))
    assert Entropy().scores(out)[1] == pytest.approx(h)


def test_total_entropy_prefers_many_uncertain_tokens_over_one_vague_short_sentence():
    # what a sentence teaches in total: five moderately uncertain tokens in a long sentence beat
    # a two-token sentence that is vaguer per token (which the mean and MNLP prefer)
    long_mixed = [SURE] * 10 + [TIE] * 5
    short_vague = [FLAT, FLAT]
    out = outputs(long_mixed, short_vague)
    assert TotalEntropy().query(out, [0, 1], 1).tolist() == [0]
    assert Entropy().query(out, [0, 1], 1).tolist() == [1]
    assert MNLP().query(out, [0, 1], 1).tolist() == [1]
    h = lambda p: -np.sum(np.array(p) * np.log(p))  # noqa: E731
    assert TotalEntropy().scores(out)[0] == pytest.approx(10 * h(SURE) + 5 * h(TIE))
    assert get_strategy("total_entropy").scores(out) == pytest.approx(TotalEntropy().scores(out))


def test_scores_use_real_tokens_only_not_batch_padding():
    """Adding a long sentence to the pool must not change a short sentence's score: no
    padding to the batch length, no padding counted as a (confident) O token."""
    short = [FLAT, SURE]
    alone = outputs(short)
    mixed = outputs(short, [SURE] * 40)
    for strategy in (LeastConfidence(), Margin(), Entropy(), EntropyMax(), TotalEntropy(), MNLP(),
                     LeastConfidence("mean"), LeastConfidence("sum")):
        assert strategy.scores(mixed)[0] == pytest.approx(strategy.scores(alone)[0])
    h = -np.sum(np.array(FLAT) * np.log(FLAT)) - np.sum(np.array(SURE) * np.log(SURE))
    assert Entropy().scores(alone)[0] == pytest.approx(h / 2)  # divided by 2 real tokens


def test_empty_sentences_score_zero_and_rank_last():
    out = ModelOutputs.from_marginals([np.zeros((0, 3)), np.array([SURE]), np.zeros((0, 3))])
    for strategy in (LeastConfidence(), Margin(), Entropy(), EntropyMax(), TotalEntropy(), MNLP()):
        s = strategy.scores(out)
        assert s[0] == 0.0 and s[2] == 0.0 and s[1] > 0
        assert strategy.query(out, [0, 1, 2], 1).tolist() == [1]
    only_empty = ModelOutputs.from_marginals([np.zeros((0, 3))] * 3)
    assert Entropy().scores(only_empty).tolist() == [0.0, 0.0, 0.0]


def test_mnlp_normalises_by_length():
    # a long sentence with a low total log-probability but a high per-token probability
    out = ModelOutputs.from_marginals([np.tile(SURE, (100, 1)), np.tile(SURE, (2, 1))],
                                      seq_log_proba=np.array([-10.0, -1.0]))
    np.testing.assert_allclose(MNLP().scores(out), [0.1, 0.5])
    assert MNLP().query(out, [0, 1], 1).tolist() == [1]


def test_mnlp_defaults_to_marginal_product_without_a_sequence_model():
    out = outputs([SURE, TIE])
    expected = -(np.log(0.98) + np.log(0.5)) / 2
    assert MNLP().scores(out)[0] == pytest.approx(expected)


def test_classifier_probabilities_are_one_token_items():
    p = np.array([[0.9, 0.05, 0.05], [0.4, 0.35, 0.25], [0.34, 0.33, 0.33]])
    out = ModelOutputs.from_probabilities(p)
    np.testing.assert_allclose(LeastConfidence().scores(out), 1 - p.max(1))
    assert Entropy().query(out, [0, 1, 2], 3).tolist() == [2, 1, 0]


def test_multi_label_probabilities_become_binary_tokens():
    p = np.array([[0.99, 0.01], [0.5, 0.02]])
    out = ModelOutputs.from_probabilities(p, multi_label=True)
    assert out.lengths.tolist() == [2, 2]
    np.testing.assert_allclose(LeastConfidence().scores(out), [0.01, 0.5])


def test_bad_aggregate_raises_naming_allowed_values():
    with pytest.raises(ValueError, match="max"):
        Entropy("median").scores(outputs([SURE]))
