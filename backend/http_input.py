"""Reading a request in a route: the per-app objects, the body (size-bounded, then ``schemas.loads``)
and the ``project`` parameter. Shared by the protocol and admin blueprints."""
from __future__ import annotations

from typing import Any

from flask import current_app, request

from backend import schemas
from backend.errors import NotFound, PayloadTooLarge


def lal() -> dict:
    """``{"settings", "backend", "queue"}`` of the app serving this request."""
    return current_app.extensions["lal"]


def read_body() -> bytes:
    """The raw body, at most ``MAX_REQUEST_MB``. Werkzeug refuses a too-large Content-Length itself
    but silently cuts a chunked body at the limit (which then read as "not valid JSON"), so a
    chunked body that still has bytes after the limit is a 413 here."""
    raw = request.get_data(cache=True)
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    if request.content_length is None and limit is not None and len(raw) >= limit:
        if request.environ["wsgi.input"].read(1):
            raise PayloadTooLarge(f"request body is over the MAX_REQUEST_MB limit ({limit / 2**20:g} MB)")
    return raw


def json_body() -> Any:
    """The body as JSON (None when empty); bad JSON, deep nesting and lone surrogates are 400s."""
    raw = read_body()
    return schemas.loads(raw) if raw else None


def project_param() -> int | None:
    """``?project=`` or the body's ``project``, parsed as a project id and known to this backend
    (404 otherwise); None when absent."""
    raw = request.args.get("project")
    if raw is None and read_body():
        body = json_body()
        raw = body.get("project") if isinstance(body, dict) else None
    return known_project(raw) if raw is not None else None


def known_project(raw: Any) -> int:
    """The project id in ``raw``, which must name a project this backend knows (connected through
    /setup, so its project.json exists): 404 otherwise, the same on every per-project route."""
    pid = schemas.project_id_of(raw)
    if not lal()["backend"].store.project(pid):
        raise NotFound(f"project {pid} is unknown to this backend: connect it in Label Studio "
                       "(Settings -> Model) so /setup sends its label config")
    return pid
