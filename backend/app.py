"""The Flask app: settings, logging, the model backend and the job queue wired together, auth
and error handling for every route, and two blueprints — ``protocol_routes`` (what Label Studio
calls: /health, /setup, /predict, /webhook, /train, /validate) and ``admin_routes`` (/versions,
/jobs, /agreement, /llm/ledger). No ML and no request parsing here: routes validate through
``schemas`` and delegate to ``MLBackend`` or the job queue.
"""
from __future__ import annotations

import functools
import logging
import uuid

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException

from backend import admin_routes, protocol_routes
from backend.auth import SecretPrefixMiddleware, basic_auth_ok, webhook_trusted
from backend.errors import BackendError, Unauthorized
from backend.logging_setup import configure_logging
from backend.ml import MLBackend
from backend.jobs import run_job
from backend.queue import InProcessQueue, JobQueue
from backend.queue_factory import make_queue
from backend.settings import Settings

log = logging.getLogger(__name__)
MAX_ERROR_CHARS = 1000


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
    # jobs run in this process use this backend and the models it has loaded
    queue = queue or make_queue(settings, functools.partial(run_job, backend=backend))
    if isinstance(queue, InProcessQueue):
        _warm_imports()
    settings.model_dir.mkdir(parents=True, exist_ok=True)  # /health reports DOWN when it is not writable
    backend.store.cleanup_partial()
    if settings.basic_auth_enabled and not settings.webhook_secret:
        log.warning("BASIC_AUTH is set but WEBHOOK_SECRET is not: Label Studio's project webhooks carry no "
                    "credentials and will be refused; only Start Training will trigger training")

    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = int(settings.max_request_mb * 1024 * 1024)
    app.extensions["lal"] = {"settings": settings, "backend": backend, "queue": queue}
    app.wsgi_app = SecretPrefixMiddleware(app.wsgi_app, settings.webhook_secret)

    @app.before_request
    def _auth():
        if request.method == "OPTIONS":
            # the same answer for every path: Flask's automatic OPTIONS said 200 on real routes and
            # 404 elsewhere, which listed the routes to anyone (Label Studio never sends OPTIONS)
            return app.response_class(status=204, headers={"Allow": "GET, POST, OPTIONS"})
        if request.path == "/health":  # open for probes; details only with credentials (see the route)
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
        # messages may quote client input: bounded, so a 5 MB value never becomes a 5 MB answer or log line
        message = e.message if len(e.message) <= MAX_ERROR_CHARS else e.message[:MAX_ERROR_CHARS] + " ..."
        path = request.path[:200]
        if e.status >= 500:
            log.error("%s %s -> %s: %s", request.method, path, e.status, message)
        else:
            log.info("%s %s -> %s: %s", request.method, path, e.status, message)
        resp = jsonify({"error": message, "status": e.status})
        if e.status == 401:
            resp.headers["WWW-Authenticate"] = 'Basic realm="ml-backend"'
        return resp, e.status

    @app.errorhandler(HTTPException)
    def _http_error(e: HTTPException):
        return jsonify({"error": e.description, "status": e.code}), e.code

    @app.errorhandler(Exception)
    def _unexpected(e: Exception):
        ref = uuid.uuid4().hex[:8]
        log.exception("unexpected error %s on %s %s", ref, request.method, request.path[:200])
        return jsonify({"error": f"internal error (reference {ref}); see the backend log", "status": 500}), 500

    app.register_blueprint(protocol_routes.bp)
    app.register_blueprint(admin_routes.bp)
    return app
