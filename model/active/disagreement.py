"""LLM-model disagreement: send a human the tasks whose automatic labels nobody can vouch for.

With an LLM pre-annotating every task we hold two independent labelings per task: the LLM's spans
(with a self-consistency score: how often repeated LLM calls reproduced the span) and the local
tagger's spans. Where they agree and the LLM is self-consistent, the pre-annotation is probably
right and a human adds little; where they disagree one of them is wrong, and a human label both
fixes the training data and teaches the local model something it got wrong. This is
query-by-committee with a committee of two very different models.

Spans are compared exactly on ``(start, end, label)`` (strict, as seqeval scores entities). Both
sides must use the same coordinates (token or character offsets).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from model.active.base import QueryStrategy
from model.active.errors import MissingOutputError
from model.active.outputs import ModelOutputs

__all__ = ["LLMDisagreement", "span_agreement", "span_disagreement", "normalise_spans"]

SpanKey = tuple[int, int, str]


def normalise_spans(spans: Sequence[Any]) -> dict[SpanKey, float]:
    """``{(start, end, label): score}`` from ``Span`` objects or ``(start, end, label[, score])``
    tuples; a missing score counts as 1.0, duplicates keep their highest score."""
    out: dict[SpanKey, float] = {}
    for s in spans:
        if hasattr(s, "label"):
            start, end, label, score = s.start, s.end, s.label, getattr(s, "score", None)
        else:
            start, end, label = s[0], s[1], s[2]
            score = s[3] if len(s) > 3 else None
        key = (int(start), int(end), str(label))
        val = 1.0 if score is None else float(score)
        out[key] = max(val, out.get(key, -np.inf))
    return out


def span_agreement(a: Sequence[Any], b: Sequence[Any]) -> float:
    """Strict span F1 between two labelings of one task; 1.0 when both have no entity."""
    ka, kb = set(normalise_spans(a)), set(normalise_spans(b))
    if not ka and not kb:
        return 1.0
    return 2.0 * len(ka & kb) / (len(ka) + len(kb))


def span_disagreement(llm: Sequence[Any], model: Sequence[Any]) -> float:
    """Share of the span mass the two sides dispute, each span weighted by its confidence.

    A span's weight is the LLM's score for it when the LLM proposed it (its self-consistency),
    else the model's confidence. A confidently proposed span that the other side lacks counts
    fully; a span the LLM produced once in ten calls barely counts. 0 when neither side has spans.
    """
    la, mo = normalise_spans(llm), normalise_spans(model)
    union = set(la) | set(mo)
    if not union:
        return 0.0
    weight = {k: (la[k] if k in la else mo[k]) for k in union}
    total = sum(weight.values())
    if total <= 0:
        return 0.0
    disputed = sum(w for k, w in weight.items() if (k in la) != (k in mo))
    return disputed / total


class LLMDisagreement(QueryStrategy):
    """Usefulness ``1 - (1 - D) * c``: D = weighted span disagreement, c = LLM self-consistency.

    Agreement with a self-consistent LLM -> 0 (auto-accept candidate, label last); any confident
    disagreement -> up to 1; agreement but an inconsistent LLM -> ``1 - c`` (the agreement may be
    luck). ``c`` is ``outputs.llm_consistency`` when given, else the mean score of the LLM's spans
    (1.0 for a task where the LLM found nothing and gave no consistency figure).
    """

    name = "llm_disagreement"
    uses_llm_predictions = True

    def scores(self, outputs: ModelOutputs) -> np.ndarray:
        if not outputs.has("llm_spans"):
            raise MissingOutputError("llm_disagreement needs the LLM pre-annotation spans "
                                     "('llm_spans'); run the LLM pre-annotation first")
        llm, model = outputs.get("llm_spans"), outputs.get("model_spans")
        if len(llm) != outputs.n or len(model) != outputs.n:
            raise ValueError("llm_spans and model_spans must have one entry per pool item")
        if outputs.has("llm_consistency"):
            cons = np.clip(np.asarray(outputs.get("llm_consistency"), dtype=np.float64), 0, 1)
        else:
            cons = np.array([np.mean(list(normalise_spans(s).values())) if len(s) else 1.0
                             for s in llm])
        d = np.array([span_disagreement(a, b) for a, b in zip(llm, model)])
        return 1.0 - (1.0 - d) * cons
