"""The exceptions of ``model.active``, in a module of their own.

Why a module: the strategy contract (``base``) and the model outputs (``outputs``) both raise them,
and ``base`` reads ``ModelOutputs``; with the exceptions in ``base``, ``outputs`` had to import
``base`` back, an import circle.
"""
from __future__ import annotations

__all__ = ["ActiveLearningError", "EmptyPoolError", "PoolExhaustedError", "MissingOutputError"]


class ActiveLearningError(Exception):
    """Root of every error raised by ``model.active``."""


class EmptyPoolError(ActiveLearningError, ValueError):
    """A query was made on a pool with no unlabelled item left."""


class PoolExhaustedError(ActiveLearningError, ValueError):
    """More items were requested than the unlabelled pool holds."""


class MissingOutputError(ActiveLearningError, ValueError):
    """The strategy needs a model output (e.g. MC-dropout samples) that was not provided."""
