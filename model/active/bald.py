"""BALD: Bayesian Active Learning by Disagreement, with MC dropout (Gal, Islam & Ghahramani 2017).

Entropy cannot tell "the model has not seen enough of this" (epistemic, worth labelling) from
"this token is genuinely ambiguous" (aleatoric, a label will not help much). BALD keeps only the
first: the mutual information between the prediction and the weights,
``I = H[mean_s p_s] - mean_s H[p_s]``, estimated from S stochastic forward passes with dropout on.
It is high only where the dropout samples *disagree* with each other.

Costs S forward passes over the pool, which is why :class:`ModelOutputs` computes the samples
only when this strategy asks for them.
"""
from __future__ import annotations

import numpy as np

from model.active.base import QueryStrategy
from model.active.errors import MissingOutputError
from model.active.outputs import ModelOutputs, segment_reduce
from model.active.uncertainty import _check_aggregate, token_entropy

__all__ = ["BALD"]


class BALD(QueryStrategy):
    """Per-token mutual information from MC-dropout samples, aggregated over real tokens.

    ``aggregate="mean"`` (default) follows the paper's mean-token form; ``"max"`` picks sentences
    with one token the model is epistemically unsure about.
    """

    name = "bald"
    requires = frozenset({"mc_marginals"})

    def __init__(self, aggregate: str = "mean"):
        self.aggregate = aggregate

    def scores(self, outputs: ModelOutputs) -> np.ndarray:
        _check_aggregate(self.aggregate)
        if not outputs.has("mc_marginals"):
            raise MissingOutputError("BALD needs MC-dropout samples ('mc_marginals'); the model "
                                     "must expose mc_dropout_marginals()")
        samples = outputs.mc_token_probs  # (S, n_tokens, T)
        lengths = outputs.lengths
        if samples.shape[1] == 0:
            return np.zeros(outputs.n)
        predictive = token_entropy(samples.mean(axis=0))
        expected = token_entropy(samples).mean(axis=0)
        mi = np.clip(predictive - expected, 0.0, None)  # >= 0 up to rounding
        return segment_reduce(mi, lengths, self.aggregate, empty=0.0)
