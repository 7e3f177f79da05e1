"""Strategy registry: names to instances, errors that list the allowed names."""
import pytest

from model.active import (BALD, DiverseBatch, Entropy, LeastConfidence, get_strategy,
                          strategy_names)


def test_every_listed_name_instantiates():
    for name in strategy_names():
        s = get_strategy(name)
        assert s.name == name or name.startswith("diverse:")


def test_parameters_reach_the_strategy_and_the_wrapper():
    assert get_strategy("entropy", aggregate="max").aggregate == "max"
    d = get_strategy("diverse:bald", method="coreset", aggregate="max")
    assert isinstance(d, DiverseBatch) and d.method == "coreset"
    assert isinstance(d.base, BALD) and d.base.aggregate == "max"
    assert isinstance(get_strategy("least_confidence"), LeastConfidence)
    assert isinstance(get_strategy("entropy"), Entropy)


@pytest.mark.parametrize("name", ["uncertainty", "diverse:random", "diverse:nope", ""])
def test_unknown_names_list_the_allowed_ones(name):
    with pytest.raises(ValueError, match="least_confidence") as exc:
        get_strategy(name)
    assert "entropy" in str(exc.value) and "random" in str(exc.value)


def test_bad_parameter_is_a_value_error():
    with pytest.raises(ValueError, match="least_confidence"):
        get_strategy("least_confidence", temperature=2)
