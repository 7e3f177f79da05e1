"""Flask app speaking Label Studio 1.23's ML backend protocol. No ML here: routes validate,
authorise and delegate to ``MLBackend`` (predict) or the job queue (training never runs in a
request: /webhook answers well within Label Studio's 1 s timeout).

Routes: GET /health, POST /setup, POST /predict, POST /webhook, POST /train (alias of Start
Training), GET /versions, POST /versions/<project>/pin, POST /versions/<project>/unpin,
GET|POST /jobs, GET /jobs/<id>, GET /agreement, GET /agreement/<project>/plot.png,
GET /llm/ledger, POST /validate.
"""
from __future__ import annotations

import json
import logging
import re
import time
import uuid
from typing import Any

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException

from backend import schemas
from backend.auth import SecretPrefixMiddleware, basic_auth_ok, webhook_trusted
from backend.errors import BackendError, BadRequest, NotFound, Unauthorized
from backend.jobs import KINDS
from backend.label_config import parse_label_config
from backend.logging_setup import configure_logging
from backend.ml import MLBackend
from backend.queue import InProcessQueue, JobQueue, make_queue
from backend.settings import Settings

log = logging.getLogger(__name__)
TRAIN_EVENTS = {"ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_DELETED", "START_TRAINING",
                "ANNOTATIONS_CREATED"}


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def _json_body() -> Any:
    data = request.get_json(silent=True, force=True)
    raw = request.get_data(cache=True)
    if data is None and raw:
        raise BadRequest("request body is not valid JSON")
    # JSON may escape a lone surrogate ("\ud800"): valid JSON, but no file, model or XML parser can
    # encode it (found by tests/faults: 500s on /setup, /predict, /validate, /webhook)
    if data is not None and _SURROGATE_ESCAPE.search(raw):
        try:
            json.dumps(data, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise BadRequest("request body holds a lone surrogate (a \\ud800-\\udfff escape without its "
                             "pair): send valid Unicode text") from None
    return data


def _warm_imports() -> None:
    """Import what a training job needs before the worker serves. Imported lazily inside the job
    thread instead, torch and the SDK hold the GIL for seconds and stall /webhook past Label
    Studio's 1 s timeout (seen in tests/faults/test_storm.py). Runs after gunicorn's fork."""
    import label_studio_sdk.client  # noqa: F401
    import model.ner.tagger  # noqa: F401
    import model.textcat.classifier  # noqa: F401


def create_app(settings: Settings | None = None, queue: JobQueue | None = None,
               backend: MLBackend | None = None) -> Flask:
    settings = settings or Settings.from_env()
    configure_logging(settings)
    backend = backend or MLBackend(settings)
    from backend import ml

    ml._RUNTIME = backend  # jobs run in this process use the same loaded models
    queue = queue or make_queue(settings)
    if isinstance(queue, InProcessQueue):
        _warm_imports()
    backend.store.cleanup_partial()
    if settings.basic_auth_enabled and not settings.webhook_secret:
        log.warning("BASIC_AUTH is set but WEBHOOK_SECRET is not: Label Studio's project webhooks carry no "
                    "credentials and will be refused; only Start Training will trigger training")

    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = int(float(settings.env.get("MAX_REQUEST_MB", "100")) * 1024 * 1024)
    app.extensions["lal"] = {"settings": settings, "backend": backend, "queue": queue}
    app.wsgi_app = SecretPrefixMiddleware(app.wsgi_app, settings.webhook_secret)

    @app.before_request
    def _auth():
        if request.path == "/health" or request.method == "OPTIONS":
            return None
        if request.path == "/webhook":
            if not webhook_trusted(settings, request.environ, request.authorization):
                raise Unauthorized("webhook refused: send basic auth or post under the secret path prefix")
            return None
        if not basic_auth_ok(settings, request.authorization):
            raise Unauthorized("basic auth required: set the same user and password in Label Studio's "
                               "model settings")
        return None

    @app.errorhandler(BackendError)
    def _backend_error(e: BackendError):
        if e.status >= 500:
            log.error("%s %s -> %s: %s", request.method, request.path, e.status, e.message)
        else:
            log.info("%s %s -> %s: %s", request.method, request.path, e.status, e.message)
        resp = jsonify({"error": e.message, "status": e.status})
        if e.status == 401:
            resp.headers["WWW-Authenticate"] = 'Basic realm="ml-backend"'
        return resp, e.status

    @app.errorhandler(HTTPException)
    def _http_error(e: HTTPException):
        return jsonify({"error": e.description, "status": e.code}), e.code

    @app.errorhandler(Exception)
    def _unexpected(e: Exception):
        ref = uuid.uuid4().hex[:8]
        log.exception("unexpected error %s on %s %s", ref, request.method, request.path)
        return jsonify({"error": f"internal error (reference {ref}); see the backend log", "status": 500}), 500

    @app.get("/")
    @app.get("/health")
    def health():
        return jsonify({"status": "UP", "model_class": "LLMActiveLearningBackend",
                        "queue": "rq" if settings.redis_url else "in-process",
                        "llm": backend.llm_status(), "predict_source": backend.source_policy()})

    @app.post("/setup")
    def setup():
        req = schemas.parse(schemas.SetupRequest, _json_body())
        pid = schemas.project_id_of(req.project)
        version = backend.setup(pid, req.schema_, req.hostname, req.extra_params)
        return jsonify({"model_version": version})

    @app.post("/validate")
    def validate():
        body = _json_body() or {}
        spec = parse_label_config(body.get("config") if isinstance(body, dict) else None)
        return jsonify({"status": "ok", "kinds": spec.kinds})

    @app.post("/predict")
    def predict():
        t0 = time.perf_counter()
        req = schemas.parse(schemas.PredictRequest, _json_body())
        if req.project is None:
            raise BadRequest("project is missing from the /predict payload")
        pid = schemas.project_id_of(req.project)
        tasks = [t.model_dump() for t in req.tasks]
        context = req.params.context if req.params else None
        out = backend.predict(pid, tasks, req.label_config, context)
        log.info("predict project %s: %d task(s) -> %d result(s) from %s in %.0f ms", pid, len(tasks),
                 len(out["results"]), out["source"], (time.perf_counter() - t0) * 1000)
        return jsonify(out)

    def _submit_training(pid: int, reason: str) -> Any:
        rec = queue.submit("train", pid, reason)
        return jsonify({"status": "queued", "job": rec["id"], "coalesced": rec.get("coalesced", False)}), 201

    @app.post("/webhook")
    def webhook():
        req = schemas.parse(schemas.WebhookRequest, _json_body())
        proj = req.project if req.project is not None else (req.annotation or {}).get("project")
        if proj is None:
            raise BadRequest(f"{req.action}: no project in the payload")
        pid = schemas.project_id_of(proj)
        config = req.project.get("label_config") if isinstance(req.project, dict) else None
        if config and backend.store.project(pid).get("label_config") != config:
            parse_label_config(config)  # refuse bad configs before storing them
            backend.store.save_project(pid, label_config=config)
        if req.action not in TRAIN_EVENTS:
            return jsonify({"status": "ignored", "action": req.action}), 200
        if not backend.store.project(pid).get("label_config"):
            raise NotFound(f"project {pid} is unknown to this backend: connect it in Label Studio "
                           "(Settings -> Model) so /setup sends its label config")
        return _submit_training(pid, req.action)

    @app.post("/train")
    def train():
        body = _json_body() or {}
        pid = schemas.project_id_of(body.get("project") if isinstance(body, dict) else None)
        backend.spec_for(pid, None)
        return _submit_training(pid, "train")

    def _project_param() -> int | None:
        body = request.get_json(silent=True, force=True) if request.get_data(cache=True) else None
        raw = request.args.get("project") or (body.get("project") if isinstance(body, dict) else None)
        return schemas.project_id_of(raw) if raw is not None else None

    @app.get("/versions")
    def versions():
        pid = _project_param()
        pids = [pid] if pid is not None else backend.store.projects()
        out: list[str] = []
        detail = {}
        for p in pids:
            vs = backend.store.versions(p)
            out += [v["version"] for v in vs]
            detail[str(p)] = {"serving": backend.store.serving(p), "versions": vs}
        return jsonify({"versions": list(dict.fromkeys(out)), "projects": detail})

    @app.post("/versions/<int:pid>/pin")
    def pin(pid: int):
        body = _json_body() or {}
        version = body.get("version") if isinstance(body, dict) else None
        if not isinstance(version, str):
            raise BadRequest('body must be {"version": "v2"}')
        backend.store.pin(pid, version)
        return jsonify({"project": pid, "serving": backend.store.serving(pid)})

    @app.post("/versions/<int:pid>/unpin")
    def unpin(pid: int):
        backend.store.unpin(pid)
        return jsonify({"project": pid, "serving": backend.store.serving(pid)})

    @app.get("/jobs")
    def jobs():
        return jsonify({"jobs": queue.list(_project_param())})

    @app.post("/jobs")
    def submit_job():
        body = _json_body()
        if not isinstance(body, dict):
            raise BadRequest('body must be {"kind": "train|prelabel|rescore|select", "project": <id>}')
        pid = schemas.project_id_of(body.get("project"))
        kind = body.get("kind")
        if kind not in KINDS:
            raise BadRequest(f"kind {kind!r}: expected one of {', '.join(KINDS)}")
        backend.spec_for(pid, None)
        rec = queue.submit(kind, pid, reason=f"api:{kind}")
        return jsonify(rec), 201

    @app.get("/jobs/<job_id>")
    def job(job_id: str):
        rec = queue.get(job_id)
        if rec is None:
            raise NotFound(f"no job {job_id!r}")
        return jsonify(rec)

    @app.get("/agreement")
    def agreement():
        pid = _project_param()
        if pid is None:
            raise BadRequest("give ?project=<id>")
        from backend.model_store import read_json

        data = read_json(backend.store.project_dir(pid) / "agreement.json")
        if data is None:
            raise NotFound(f"project {pid} has no live agreement yet: it is computed at each training")
        return jsonify(data)

    @app.get("/agreement/<int:pid>/plot.png")
    def agreement_plot(pid: int):
        from backend import live_agreement

        return app.response_class(live_agreement.plot(backend.store, pid), mimetype="image/png")

    @app.get("/llm/ledger")
    def ledger():
        pid = request.args.get("project")
        return jsonify(backend.llm.ledger.summary(project=pid))

    return app
