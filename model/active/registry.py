"""Strategy names -> classes, so configs, the CLI and the backend pick a strategy by string.

Wrapped strategies are spelled ``diverse:<base>`` (e.g. ``diverse:least_confidence`` with
``method="coreset"``): the diversity step is a property of the batch, not a separate ranking.
"""
from __future__ import annotations

from typing import Any

from model.active.bald import BALD
from model.active.base import QueryStrategy
from model.active.disagreement import LLMDisagreement
from model.active.diversity import DiverseBatch, RandomSampling
from model.active.uncertainty import (MNLP, Entropy, EntropyMax, LeastConfidence, Margin,
                                      TotalEntropy)

__all__ = ["STRATEGIES", "get_strategy", "strategy_names"]

STRATEGIES: dict[str, type[QueryStrategy]] = {
    cls.name: cls
    for cls in (LeastConfidence, Margin, Entropy, EntropyMax, TotalEntropy, MNLP, BALD,
                RandomSampling, LLMDisagreement)
}

_DIVERSE_PARAMS = {"method", "candidates", "queue_batch", "seed"}


def strategy_names() -> list[str]:
    """Every accepted name, including the ``diverse:<base>`` forms."""
    return sorted(STRATEGIES) + [f"diverse:{n}" for n in sorted(STRATEGIES) if n != "random"]


def get_strategy(name: str, **params: Any) -> QueryStrategy:
    """Instantiate a strategy by name; unknown names raise ValueError listing the allowed ones.

    For ``diverse:<base>``, the DiverseBatch parameters (method, candidates, queue_batch, seed)
    go to the wrapper and the rest to the base strategy.
    """
    if name.startswith("diverse:"):
        base_name = name.split(":", 1)[1]
        if base_name == "random" or base_name not in STRATEGIES:
            raise ValueError(f"unknown strategy {name!r}; expected one of {strategy_names()}")
        wrap = {k: v for k, v in params.items() if k in _DIVERSE_PARAMS}
        base = {k: v for k, v in params.items() if k not in _DIVERSE_PARAMS}
        return DiverseBatch(get_strategy(base_name, **base), **wrap)
    try:
        cls = STRATEGIES[name]
    except KeyError:
        raise ValueError(f"unknown strategy {name!r}; expected one of {strategy_names()}") from None
    try:
        return cls(**params)
    except TypeError as exc:
        raise ValueError(f"bad parameters for strategy {name!r}: {exc}") from None
