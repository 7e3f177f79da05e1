"""Hyperparameter handling shared by the local models (sklearn-style: ``__init__`` only stores)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def merged_params(hyper: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict:
    """``defaults`` overridden by ``hyper``; an unknown name raises ValueError listing the allowed
    ones, at fit time, so a typo never silently trains with the default."""
    unknown = set(hyper) - set(defaults)
    if unknown:
        raise ValueError(f"Unknown hyperparameters {sorted(unknown)}; expected some of {sorted(defaults)}")
    return {**defaults, **hyper}
