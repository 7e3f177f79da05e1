"""Label Studio prediction JSON, and the bulk writer that keeps the labelling queue ordered.

After each training, ``PredictionWriter`` predicts every unlabelled task with the new version,
scores it with the project's query strategy (``score`` low = label this first), imports the
predictions in bulk and sets the project's ``model_version`` to the new version. Label Studio's
"Uncertainty sampling" only orders by predictions whose model_version equals the project's, so
without the last step the queue would silently be random.
"""
from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np

from model.spec import TaskSpec
from model.types import Span

if TYPE_CHECKING:
    from backend.ls_client import LabelStudioClient
    from backend.ml import MLBackend
    from model.local import LocalModel

log = logging.getLogger(__name__)


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
    return f"llm:{model_name}"


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


class PredictionWriter:
    def __init__(self, backend: "MLBackend", client: "LabelStudioClient"):
        self.backend = backend
        self.client = client

    def write(self, project_id: int, spec: TaskSpec, version: str, model: "LocalModel",
              tasks: list[dict] | None = None) -> dict:
        """Predict, score and import every unlabelled task (``tasks``, or listed afresh: id and
        text only, unless the strategy reads the LLM predictions stored on the tasks)."""
        t0 = time.perf_counter()
        strategy_name = self.backend.project_option(project_id, "query_strategy", self.backend.settings.query_strategy)
        if tasks is None:  # predict each page while Label Studio serves the next one
            pages = _read_ahead(self.client.unlabeled_pages(
                project_id, with_predictions=uses_llm_predictions(strategy_name)))
        else:
            pages = iter([tasks])
        key = (spec.ner or spec.choices).value_key
        tasks, texts, preds, seen = [], [], [], set()
        for page in pages:
            page = [t for t in page if isinstance((t.get("data") or {}).get(key), str) and t["id"] not in seen]
            seen.update(t["id"] for t in page)  # a page boundary shifted by a new annotation
            page_texts = [t["data"][key] for t in page]
            tasks += page
            texts += page_texts
            preds += model.predict(page_texts)
        if not tasks:
            self.client.set_model_version(project_id, version)
            return {"tasks": 0, "seconds": round(time.perf_counter() - t0, 3)}
        t1 = time.perf_counter()
        scores, strategy = queue_scores(strategy_name, model, texts, preds, tasks, spec)
        payload = [{"task": int(t["id"]), "result": regions_for(spec, txt, p.spans, p.choices),
                    "score": float(round(s, 6)), "model_version": version}
                   for t, txt, p, s in zip(tasks, texts, preds, scores)]
        t2 = time.perf_counter()
        n = self.client.import_predictions(project_id, payload)
        self.client.set_model_version(project_id, version)
        t3 = time.perf_counter()
        secs = round(t3 - t0, 3)
        log.info("project %s: wrote %d predictions of %s (%s) in %.2fs", project_id, n, version, strategy, secs)
        return {"tasks": n, "strategy": strategy, "seconds": secs,
                "phases": {"list_predict": round(t1 - t0, 3), "score": round(t2 - t1, 3),
                           "import": round(t3 - t2, 3)}}


def llm_spans_of(tasks: list[dict], spec: TaskSpec) -> tuple[list | None, np.ndarray | None]:
    """The newest LLM pre-annotation stored on each task (spans + its score as self-consistency),
    for the LLM-model disagreement strategy; None when no task has one."""
    spans, consistency, found = [], [], False
    for t in tasks:
        llm = [p for p in (t.get("predictions") or []) if str(p.get("model_version", "")).startswith("llm:")]
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


def _read_ahead(pages: Iterator[list[dict]]) -> Iterator[list[dict]]:
    """Yield ``pages`` while a thread already fetches the next one (Label Studio's listing and our
    model then use the two cores at once)."""
    with ThreadPoolExecutor(1, thread_name_prefix="ls-read-ahead") as pool:
        nxt = pool.submit(next, pages, None)
        while (page := nxt.result()) is not None:
            nxt = pool.submit(next, pages, None)
            yield page


def uses_llm_predictions(strategy_name: str) -> bool:
    """Whether the strategy reads the LLM pre-annotations stored on the tasks."""
    from model.active.registry import get_strategy

    try:
        return bool(get_strategy(strategy_name).uses_llm_predictions)
    except ValueError:
        return False


def queue_scores(strategy_name: str, model: "LocalModel", texts: list[str], preds: list,
                 tasks: list[dict] | None = None, spec: TaskSpec | None = None) -> tuple[np.ndarray, str]:
    """Scores in [0, 1] for Label Studio's queue, low = label first, from the project's query
    strategy; when the strategy lacks an input (e.g. disagreement before any LLM pre-annotation)
    the model's own least-confidence score is used and the log says so."""
    from model.active.base import ActiveLearningError
    from model.active.base import queue_scores as ranked
    from model.active.registry import get_strategy

    llm_spans, consistency = llm_spans_of(tasks or [], spec) if spec is not None and spec.ner else (None, None)
    try:
        strategy = get_strategy(strategy_name)
        return ranked(strategy, model.outputs(texts, preds, llm_spans=llm_spans, llm_consistency=consistency)), strategy_name
    except ActiveLearningError as e:
        log.warning("strategy %s unusable here (%s); ordering by model confidence", strategy_name, e)
        return np.array([p.score for p in preds], dtype=float), "confidence"
