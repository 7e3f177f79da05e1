"""Label Studio JSON, read and written in one place: result regions, predictions, and the human
annotations and stored predictions of listed tasks.

Why one module: the offsets, label names and ``from_name``/``to_name`` pairs of a region must be
the same whether the backend writes a prediction, reads an annotation back as a training example,
or compares the two for live agreement; three copies of that parsing drift apart.
"""
from __future__ import annotations

import re
import uuid
from typing import Any

import numpy as np

from model.spec import TaskSpec
from model.types import Example, Span

LLM_PREFIX = "llm:"
_MODEL_VERSION = re.compile(r"^v\d+$")
# what the backend keeps of a listed task between fits (backend/training_data.py): enough for the
# training example, live agreement and routing, and nothing of Label Studio's bookkeeping
_ANNOTATION_KEYS = ("id", "result", "was_cancelled", "created_at", "updated_at", "parent_prediction")
_PREDICTION_KEYS = ("id", "result", "score", "model_version", "created_at")


# -- writing ---------------------------------------------------------------------------------------
def regions_for(spec: TaskSpec, text: str, spans: list[Span], choices: list[tuple[str, float]]) -> list[dict]:
    """Label Studio result regions: exact character offsets, labels restricted to the config."""
    out: list[dict] = []
    if spec.ner is not None:
        allowed = set(spec.ner.labels)
        for s in spans:
            if s.label not in allowed or not (0 <= s.start < s.end <= len(text)):
                continue
            region = {"id": uuid.uuid4().hex[:10], "from_name": spec.ner.from_name, "to_name": spec.ner.to_name,
                      "type": "labels", "origin": "prediction",
                      "value": {"start": s.start, "end": s.end, "text": text[s.start:s.end], "labels": [s.label]}}
            if s.score is not None:
                region["score"] = round(float(s.score), 6)
            out.append(region)
    if spec.choices is not None and choices:
        allowed = set(spec.choices.choices)
        picked = [c for c, _ in choices if c in allowed]
        if not spec.choices.multi_label:
            picked = picked[:1]
        if picked:
            region = {"id": uuid.uuid4().hex[:10], "from_name": spec.choices.from_name,
                      "to_name": spec.choices.to_name, "type": "choices", "origin": "prediction",
                      "value": {"choices": picked}}
            region["score"] = round(float(min(s for c, s in choices if c in picked)), 6)
            out.append(region)
    return out


def llm_model_version(model_name: str) -> str:
    return f"{LLM_PREFIX}{model_name}"


def llm_prediction(spec: TaskSpec, text: str, result: Any) -> dict | None:
    """An ``LLMResult`` as a prediction, or None when the LLM failed on this text (reported upstream)."""
    if result.error and not result.spans and not result.choices:
        return None
    task_score = float(result.score) if result.score is not None else 0.0
    # a region without its own confidence (e.g. from a re-asked sample) takes the task's
    spans = [s if s.score is not None else Span(s.start, s.end, s.label, task_score) for s in result.spans]
    return {"result": regions_for(spec, text, spans, result.choices),
            "score": round(task_score, 6),
            "model_version": llm_model_version(result.model)}


# -- reading ---------------------------------------------------------------------------------------
def prediction_source(model_version: str) -> str | None:
    """``llm`` for the LLM's pre-annotations, ``model`` for the local model's ``vN`` versions."""
    if model_version.startswith(LLM_PREFIX):
        return "llm"
    if _MODEL_VERSION.match(model_version):
        return "model"
    return None


def first_prediction(task: dict, source: str) -> dict | None:
    """The earliest stored prediction of a source: the one the annotator saw, before any retrain."""
    preds = [p for p in task.get("predictions") or [] if prediction_source(str(p.get("model_version", ""))) == source]
    return min(preds, key=lambda p: (str(p.get("created_at") or ""), p.get("id") or 0)) if preds else None


def prediction_spans(pred: dict, spec: TaskSpec) -> list[Span]:
    """The NER spans of a stored prediction (regions of the config's <Labels> only)."""
    return [Span(int(r["value"]["start"]), int(r["value"]["end"]), r["value"]["labels"][0], r.get("score"))
            for r in pred.get("result") or []
            if r.get("from_name") == spec.ner.from_name and r.get("value", {}).get("labels")]


def example_from_task(task: dict, spec: TaskSpec) -> Example | None:
    """The latest non-cancelled human annotation of ``task`` as an ``Example`` (None if none)."""
    anns = [a for a in (task.get("annotations") or []) if not a.get("was_cancelled")]
    if not anns:
        return None
    ann = max(anns, key=lambda a: (str(a.get("updated_at") or a.get("created_at") or ""), a.get("id") or 0))
    key = (spec.ner or spec.choices).value_key
    text = (task.get("data") or {}).get(key)
    if not isinstance(text, str):
        return None
    spans: list[Span] = []
    choices: list[str] = []
    for r in ann.get("result") or []:
        v = r.get("value") or {}
        if spec.ner and r.get("from_name") == spec.ner.from_name and "start" in v and "end" in v:
            for label in v.get("labels") or []:
                s, e = int(v["start"]), int(v["end"])
                if 0 <= s < e <= len(text):
                    spans.append(Span(s, e, label))
        elif spec.choices and r.get("from_name") == spec.choices.from_name:
            choices.extend(v.get("choices") or [])
    return Example(text=text, spans=spans, choices=choices, task_id=task.get("id"))


def human_examples(tasks: list[dict], spec: TaskSpec) -> dict[int, Example]:
    """Task id -> its latest human annotation as an ``Example``, for the tasks that have one."""
    return {t["id"]: ex for t in tasks if (ex := example_from_task(t, spec)) is not None}


def has_annotation(task: dict) -> bool:
    """Any annotation at all, skipped ones included: its task's predictions are history to keep."""
    return bool(task.get("annotations")) or int(task.get("total_annotations") or 0) > 0 \
        or int(task.get("cancelled_annotations") or 0) > 0


def slim_task(task: dict) -> dict:
    """What the backend keeps of a listed task between fits (see ``_ANNOTATION_KEYS``)."""
    return {"id": task["id"], "data": task.get("data") or {}, "updated_at": task.get("updated_at"),
            "annotations": [{k: a.get(k) for k in _ANNOTATION_KEYS} for a in task.get("annotations") or []],
            "predictions": [{k: p.get(k) for k in _PREDICTION_KEYS} for p in task.get("predictions") or []]}


def llm_spans_of(tasks: list[dict], spec: TaskSpec) -> tuple[list | None, np.ndarray | None]:
    """The newest LLM pre-annotation stored on each task (spans + its score as self-consistency),
    for the LLM-model disagreement strategy; None when no task has one."""
    spans, consistency, found = [], [], False
    for t in tasks:
        llm = [p for p in (t.get("predictions") or []) if str(p.get("model_version", "")).startswith(LLM_PREFIX)]
        if not llm:
            spans.append([])
            consistency.append(0.0)
            continue
        found = True
        p = max(llm, key=lambda x: str(x.get("created_at") or ""))
        spans.append([(r["value"]["start"], r["value"]["end"], r["value"]["labels"][0], r.get("score"))
                      for r in p.get("result") or [] if r.get("type") == "labels" and r.get("value", {}).get("labels")])
        consistency.append(float(p.get("score") or 0.0))
    return (spans, np.asarray(consistency)) if found else (None, None)
