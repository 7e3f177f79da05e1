"""Bulk jobs over a project's unlabelled tasks: LLM pre-annotation and queue re-scoring.

Label Studio's "Retrieve Predictions" sends every selected task in ONE /predict call with a 100 s
timeout, which an LLM cannot meet for hundreds of tasks; this job annotates them in the
background (LLM cache and ledger included) and writes the predictions through the SDK instead.
"""
from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from backend.errors import Conflict
from backend.ls_json import human_examples, llm_prediction
from backend.superseded import record_llm_version

if TYPE_CHECKING:
    from backend.ml import MLBackend

log = logging.getLogger(__name__)
CHUNK = 50
# predictions per import request: Label Studio 1.23 recounts every task of the project per import
# (ls_client.IMPORT_CHUNK), so one request per CHUNK cost ~10 s each at 10,000 tasks; an
# interrupted job loses at most this many writes (the LLM's answers stay in its cache)
IMPORT_EVERY = 1_000


def prelabel_project(backend: "MLBackend", project_id: int) -> dict:
    from backend.ls_client import LabelStudioClient

    t0 = time.perf_counter()
    status = backend.llm_status()
    if not status.get("enabled"):
        raise Conflict(f"LLM is off: {status.get('reason', 'not configured')}")
    spec, _ = backend.spec_for(project_id, None)
    client = LabelStudioClient(backend.settings.label_studio_url, backend.settings.label_studio_api_key)
    key = (spec.ner or spec.choices).value_key
    from backend.training_data import AnnotationSet

    annotated, _ = AnnotationSet(backend.store, project_id, backend.settings.full_sync_every).sync(client)
    human = human_examples(annotated, spec)
    examples = list(human.values())  # few-shot pool: human-accepted annotations only
    tasks = [t for t in client.unlabeled_tasks(project_id)
             if t["id"] not in human and isinstance((t.get("data") or {}).get(key), str)]
    language = backend.project_option(project_id, "language")
    # the projected cost before any call (the hard budget LLM_BUDGET_USD still stops the job)
    projection = backend.llm.project_texts([t["data"][key] for t in tasks], spec, language=language,
                                           examples=examples)
    log.info("prelabel project %s: %d tasks, projected cost $%.4f (prompt only) .. $%.4f, %d requests",
             project_id, len(tasks), projection.get("prompt_usd_est", 0.0), projection.get("max_usd_est", 0.0),
             projection.get("requests", 0))
    written = failed = 0
    errors: list[dict] = []
    pending: list[dict] = []
    for i in range(0, len(tasks), CHUNK):
        chunk = tasks[i:i + CHUNK]
        texts = [t["data"][key] for t in chunk]
        results = backend.llm.annotate(texts, spec, project=str(project_id), language=language,
                                       examples=examples, progress=False)
        payload = []
        for t, text, r in zip(chunk, texts, results):
            pred = llm_prediction(spec, text, r)
            if pred is None:
                failed += 1
                errors.append({"task": t["id"], "error": r.error})
                continue
            payload.append({"task": int(t["id"]), **pred})
        for v in {p["model_version"] for p in payload}:
            record_llm_version(backend.store, project_id, v)
        pending += payload
        if len(pending) >= IMPORT_EVERY or i + CHUNK >= len(tasks):
            written += client.import_predictions(project_id, pending)
            pending = []
        log.info("prelabel project %s: %d/%d tasks", project_id, min(i + CHUNK, len(tasks)), len(tasks))
    return {"status": "done", "tasks": len(tasks), "written": written, "failed": failed,
            "errors": errors[:50], "projected_cost": projection,
            "ledger": backend.llm.ledger.summary(project=str(project_id)),
            "seconds": round(time.perf_counter() - t0, 3)}


def rescore_project(backend: "MLBackend", project_id: int) -> dict:
    from backend.ls_client import LabelStudioClient

    version, model = backend.cache.get(project_id)
    if model is None:
        raise Conflict(f"project {project_id} has no trained model to score with")
    spec, _ = backend.spec_for(project_id, None)
    client = LabelStudioClient(backend.settings.label_studio_url, backend.settings.label_studio_api_key)
    return {"status": "done", "version": version,
            "written": backend.prediction_writer(project_id, client).write(project_id, spec, version, model)}
