"""Operator routes beside the protocol: model versions (list, pin, unpin), jobs (list, submit,
show), live agreement (JSON and plot) and the LLM ledger. The CLI (``python -m backend``) calls
these over HTTP."""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request

from backend import schemas
from backend.errors import BadRequest, NotFound
from backend.http_input import json_body, known_project, lal, project_param
from backend.ids import clip, is_job_id
from backend.jobs import KINDS

bp = Blueprint("admin", __name__)


@bp.get("/versions")
def versions():
    backend = lal()["backend"]
    pid = project_param()
    pids = [pid] if pid is not None else backend.store.projects()
    out: list[str] = []
    detail = {}
    for p in pids:
        vs = backend.store.versions(p)
        out += [v["version"] for v in vs]
        detail[str(p)] = {"serving": backend.store.serving(p), "versions": vs}
    return jsonify({"versions": list(dict.fromkeys(out)), "projects": detail})


@bp.post("/versions/<project>/pin")
def pin(project: str):
    pid = known_project(project)
    store = lal()["backend"].store
    req = schemas.parse(schemas.PinRequest, json_body() or {})
    store.pin(pid, req.version)
    return jsonify({"project": pid, "serving": store.serving(pid), **_rewrite_queue(pid, "pin")})


@bp.post("/versions/<project>/unpin")
def unpin(project: str):
    pid = known_project(project)
    store = lal()["backend"].store
    store.unpin(pid)
    return jsonify({"project": pid, "serving": store.serving(pid), **_rewrite_queue(pid, "unpin")})


def _rewrite_queue(pid: int, reason: str) -> dict:
    """A rollback re-writes Label Studio's queue for the version now serving (a ``rescore`` job):
    otherwise the queue keeps following the version that was rolled back."""
    backend = lal()["backend"]
    if not (backend.settings.write_predictions and backend.settings.label_studio_url):
        return {}
    return {"rescore_job": lal()["queue"].submit("rescore", pid, reason)["id"]}


@bp.get("/jobs")
def jobs():
    """Newest first, a page at a time: ``?limit=`` (default 50, at most 500) and ``?offset=``;
    ``total`` and ``next_offset`` say what the page leaves out."""
    def number(name: str, default: int) -> int:
        raw = request.args.get(name)
        if raw is None:
            return default
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 9):
            raise BadRequest(f"{name} must be a whole number, got {clip(raw)}")
        return int(raw)

    return jsonify(lal()["queue"].page(project_param(), number("limit", 50), number("offset", 0)))


@bp.post("/jobs")
def submit_job():
    body = json_body()
    if not isinstance(body, dict):
        raise BadRequest('body must be {"kind": "train|prelabel|rescore|select", "project": <id>}')
    req = schemas.parse(schemas.JobRequest, body)
    if req.kind not in KINDS:
        raise BadRequest(f"kind {clip(req.kind)}: expected one of {', '.join(KINDS)}")
    pid = known_project(req.project)
    lal()["backend"].spec_for(pid, None)
    rec = lal()["queue"].submit(req.kind, pid, reason=f"api:{req.kind}")
    return jsonify(rec), 201


@bp.get("/jobs/<job_id>")
def job(job_id: str):
    rec = lal()["queue"].get(job_id) if is_job_id(job_id) else None
    if rec is None:
        raise NotFound(f"no job {clip(job_id)}")
    return jsonify(rec)


@bp.get("/agreement")
def agreement():
    from backend.model_store import read_json

    pid = project_param()
    if pid is None:
        raise BadRequest("give ?project=<id>")
    data = read_json(lal()["backend"].store.project_dir(pid) / "agreement.json")
    if data is None:
        raise NotFound(f"project {pid} has no live agreement yet: it is computed at each training")
    return jsonify(data)


@bp.get("/agreement/<project>/plot.png")
def agreement_plot(project: str):
    from backend import live_agreement

    pid = known_project(project)
    return current_app.response_class(live_agreement.plot(lal()["backend"].store, pid), mimetype="image/png")


@bp.get("/llm/ledger")
def ledger():
    pid = project_param()
    return jsonify(lal()["backend"].llm.ledger.summary(project=None if pid is None else str(pid)))
