"""Routing: which LLM labels may skip human review, and thresholds fitted on live figures."""
import numpy as np
import pytest

from model.active import RoutingPolicy, fit_thresholds, route


def test_accept_needs_both_consistency_and_agreement():
    p = RoutingPolicy(min_consistency=0.9, min_agreement=0.8)
    acc = p.accept([0.95, 0.95, 0.5, 0.9], [0.9, 0.5, 1.0, 0.8])
    assert acc.tolist() == [True, False, False, True]
    with pytest.raises(ValueError, match="shape"):
        p.accept([1.0], [1.0, 1.0])


def test_route_computes_span_agreement_with_the_model():
    llm = [[(0, 1, "PER")], [(0, 1, "PER")], []]
    model = [[(0, 1, "PER", 0.9)], [(0, 1, "LOC", 0.9)], []]
    accept, agreement = route(llm, model, [1.0, 1.0, 0.4], RoutingPolicy(0.9, 1.0))
    assert agreement.tolist() == [1.0, 0.0, 1.0]
    assert accept.tolist() == [True, False, False]


def test_fit_thresholds_from_reviewed_tasks():
    rng = np.random.default_rng(0)
    n = 200
    consistency = rng.choice([0.4, 0.7, 1.0], n)
    agreement = rng.choice([0.0, 0.5, 1.0], n)
    good = (consistency >= 0.7) & (agreement >= 1.0)
    quality = np.where(good, 0.99, 0.6)  # LLM quality vs the human label
    p = fit_thresholds(consistency, agreement, quality, target_quality=0.95, min_support=10)
    assert (p.min_consistency, p.min_agreement) == (0.7, 1.0)
    assert p.est_quality == pytest.approx(0.99)
    assert p.support == int(good.sum()) and p.coverage == pytest.approx(good.mean())
    assert p.accept(consistency, agreement).tolist() == good.tolist()
    d = p.to_dict()
    assert d["min_consistency"] == 0.7


def test_fit_thresholds_is_safe_without_evidence():
    p = fit_thresholds([1.0] * 5, [1.0] * 5, [1.0] * 5, min_support=20)
    assert p.accepts_nothing and not p.accept([1.0], [1.0]).any()
    assert p.to_dict()["min_consistency"] is None
    bad = fit_thresholds([1.0] * 50, [1.0] * 50, [0.5] * 50, target_quality=0.9, min_support=20)
    assert bad.accepts_nothing
