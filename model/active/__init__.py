"""Active learning: query strategies over lazily computed model outputs, queue scores for Label
Studio, LLM-model disagreement and the routing rule for auto-accepting LLM labels."""
from model.active.bald import BALD
from model.active.base import QueryStrategy, queue_scores, validate_pool
from model.active.errors import ActiveLearningError, EmptyPoolError, MissingOutputError, PoolExhaustedError
from model.active.disagreement import LLMDisagreement, span_agreement, span_disagreement
from model.active.diversity import DiverseBatch, RandomSampling
from model.active.outputs import ModelOutputs
from model.active.registry import STRATEGIES, get_strategy, strategy_names
from model.active.routing import RoutingPolicy, fit_thresholds, route
from model.active.uncertainty import (MNLP, Entropy, EntropyMax, LeastConfidence, Margin,
                                      TotalEntropy)

__all__ = ["ActiveLearningError", "EmptyPoolError", "PoolExhaustedError", "MissingOutputError",
           "QueryStrategy", "queue_scores", "validate_pool", "ModelOutputs", "LeastConfidence",
           "Margin", "Entropy", "EntropyMax", "TotalEntropy", "MNLP", "BALD", "RandomSampling", "DiverseBatch",
           "LLMDisagreement", "span_agreement", "span_disagreement", "STRATEGIES",
           "get_strategy", "strategy_names", "RoutingPolicy", "route", "fit_thresholds"]
