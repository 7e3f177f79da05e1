"""LLM-model span disagreement on hand-made spans."""
import numpy as np
import pytest

from model.active import LLMDisagreement, MissingOutputError, ModelOutputs
from model.active.disagreement import span_agreement, span_disagreement
from model.types import Span
from tests.model.active.contract import StrategyContract


class TestDisagreementContract(StrategyContract):
    def make_strategy(self):
        return LLMDisagreement()


KANO = (3, 4, "LOC", 1.0)
BUHARI = (0, 1, "PER", 1.0)


def test_span_agreement_is_strict_f1():
    assert span_agreement([], []) == 1.0
    assert span_agreement([KANO], [KANO]) == 1.0
    assert span_agreement([KANO], [(3, 4, "ORG")]) == 0.0      # label differs
    assert span_agreement([KANO], [(3, 5, "LOC")]) == 0.0      # boundary differs
    assert span_agreement([KANO, BUHARI], [KANO]) == pytest.approx(2 / 3)
    assert span_agreement([Span(3, 4, "LOC")], [(3, 4, "LOC", 0.2)]) == 1.0  # Span objects


def test_disagreement_weights_spans_by_llm_confidence():
    assert span_disagreement([], []) == 0.0
    assert span_disagreement([KANO], [KANO]) == 0.0
    assert span_disagreement([KANO], []) == 1.0
    # a span the LLM produced in 1 of 10 runs barely counts against a shared confident span
    weak = (7, 8, "ORG", 0.1)
    assert span_disagreement([KANO, weak], [KANO]) == pytest.approx(0.1 / 1.1)


def test_ranking_agreeing_consistent_last_confident_disagreement_first():
    llm = [[KANO], [KANO], [BUHARI], [(3, 4, "LOC", 0.5)]]
    model = [[KANO], [(3, 4, "ORG", 0.8)], [BUHARI], [(3, 4, "LOC", 0.9)]]
    out = ModelOutputs(4, llm_spans=llm, model_spans=model,
                       llm_consistency=np.array([1.0, 1.0, 0.6, 0.5]))
    s = LLMDisagreement().scores(out)
    np.testing.assert_allclose(s, [0.0, 1.0, 0.4, 0.5])
    assert LLMDisagreement().query(out, [0, 1, 2, 3], 4).tolist() == [1, 3, 2, 0]


def test_consistency_defaults_to_mean_llm_span_score():
    out = ModelOutputs(2, llm_spans=[[(0, 1, "PER", 0.7)], []], model_spans=[[(0, 1, "PER")], []])
    np.testing.assert_allclose(LLMDisagreement().scores(out), [0.3, 0.0])


def test_missing_llm_spans_and_length_mismatch():
    with pytest.raises(MissingOutputError, match="pre-annotation"):
        LLMDisagreement().scores(ModelOutputs(1, model_spans=[[]]))
    with pytest.raises(ValueError, match="one entry per pool item"):
        LLMDisagreement().scores(ModelOutputs(2, llm_spans=[[]], model_spans=[[], []]))
