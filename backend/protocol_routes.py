"""The routes Label Studio 1.23 itself calls (its ML backend protocol): /health, /setup,
/predict, /webhook, /train (alias of Start Training) and /validate.

Nothing here trains: /webhook answers well within Label Studio's 1 s timeout and queues the work.
"""
from __future__ import annotations

import logging
import os
import time
from typing import Any

from flask import Blueprint, jsonify, request

from backend import schemas
from backend.auth import basic_auth_ok
from backend.errors import BadRequest, NotFound
from backend.http_input import json_body, known_project, lal
from backend.label_config import parse_label_config

log = logging.getLogger(__name__)
bp = Blueprint("protocol", __name__)
TRAIN_EVENTS = {"ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_DELETED", "START_TRAINING",
                "ANNOTATIONS_CREATED"}


@bp.get("/")
@bp.get("/health")
def health():
    """UP/DOWN for anyone (probes, Docker's HEALTHCHECK); the LLM endpoint, model, spend and
    budget only for a caller with the basic-auth credentials when auth is on (Label Studio sends
    them on /health)."""
    settings, backend = lal()["settings"], lal()["backend"]
    up = settings.model_dir.is_dir() and os.access(settings.model_dir, os.W_OK | os.X_OK)
    body: dict[str, Any] = {"status": "UP" if up else "DOWN"}
    if basic_auth_ok(settings, request.authorization):
        body.update({"model_class": "LLMActiveLearningBackend",
                     "queue": "rq" if settings.redis_url else "in-process",
                     "llm": backend.llm_status(), "predict_source": backend.source_policy()})
        if not up:
            body["detail"] = f"MODEL_DIR {settings.model_dir} is not a writable directory"
    return jsonify(body), 200 if up else 503


@bp.post("/setup")
def setup():
    req = schemas.parse(schemas.SetupRequest, json_body())
    pid = schemas.project_id_of(req.project)
    version = lal()["backend"].setup(pid, req.schema_, req.hostname, req.extra_params)
    return jsonify({"model_version": version})


@bp.post("/validate")
def validate():
    req = schemas.parse(schemas.ValidateRequest, json_body() or {})
    spec = parse_label_config(req.config)
    return jsonify({"status": "ok", "kinds": spec.kinds})


@bp.post("/predict")
def predict():
    t0 = time.perf_counter()
    req = schemas.parse(schemas.PredictRequest, json_body())
    if req.project is None:
        raise BadRequest("project is missing from the /predict payload")
    # Label Studio sends the label config with every /predict; without it the project must be known
    pid = schemas.project_id_of(req.project) if req.label_config is not None else known_project(req.project)
    tasks = [t.model_dump() for t in req.tasks]
    context = req.params.context if req.params else None
    out = lal()["backend"].predict(pid, tasks, req.label_config, context)
    log.info("predict project %s: %d task(s) -> %d result(s) from %s in %.0f ms", pid, len(tasks),
             len(out["results"]), out["source"], (time.perf_counter() - t0) * 1000)
    return jsonify(out)


def submit_training(pid: int, reason: str) -> Any:
    rec = lal()["queue"].submit("train", pid, reason)
    out = {"status": "queued", "job": rec["id"], "coalesced": rec.get("coalesced", False)}
    if rec.get("status") == "waiting":  # the retrain cadence (TRAIN_EVERY_N): nothing queued yet
        return jsonify({**out, "status": "waiting", "detail": rec.get("detail")}), 200
    if rec.get("not_before"):  # TRAIN_MIN_INTERVAL_S: queued, starts when the interval has passed
        out["not_before"] = rec["not_before"]
    return jsonify(out), 201


@bp.post("/webhook")
def webhook():
    backend = lal()["backend"]
    req = schemas.parse(schemas.WebhookRequest, json_body())
    proj = req.project if req.project is not None else (req.annotation or {}).get("project")
    if proj is None:
        raise BadRequest(f"{req.action}: no project in the payload")
    pid = schemas.project_id_of(proj)
    config = req.project.get("label_config") if isinstance(req.project, dict) else None
    stored = backend.store.project(pid)
    if config and stored.get("label_config") != config:
        parse_label_config(config)  # refuse bad configs, stored or not
        if stored.get("connected"):  # Label Studio's PROJECT_UPDATED after a config edit
            backend.store.save_project(pid, label_config=config)
        else:  # whoever holds the webhook secret must not (re)define projects Label Studio never connected
            log.warning("webhook %s for project %s carries a label config, but the project was never connected "
                        "through /setup: config not stored", req.action, pid)
    if req.action not in TRAIN_EVENTS:
        return jsonify({"status": "ignored", "action": req.action}), 200
    if not backend.store.project(pid).get("label_config"):
        raise NotFound(f"project {pid} is unknown to this backend: connect it in Label Studio "
                       "(Settings -> Model) so /setup sends its label config")
    return submit_training(pid, req.action)


@bp.post("/train")
def train():
    req = schemas.parse(schemas.ProjectRequest, json_body() or {})
    pid = known_project(req.project)
    lal()["backend"].spec_for(pid, None)
    return submit_training(pid, "train")
