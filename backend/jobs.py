"""Job entry points. Arguments are ids only, so the same functions run in a thread of the server
or in an ``rq worker`` process on another machine sharing ``MODEL_DIR``.

Kinds: ``train`` (fit the local model, publish a version, write scored predictions), ``prelabel``
(bulk LLM pre-annotation of unlabelled tasks), ``rescore`` (re-write queue scores with the serving
version), ``select`` (LLM selection run). Each holds the project's inter-process lock while it
runs, so two workers never train the same project at once.
"""
from __future__ import annotations

import logging
import re
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from backend.ml import MLBackend

log = logging.getLogger(__name__)
KINDS = ("train", "prelabel", "rescore", "select")
# webhook actions that mean "the annotations changed"; they go through the retrain cadence, while
# Start Training, POST /train and POST /jobs always train
ANNOTATION_EVENTS = frozenset({"ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_DELETED",
                               "ANNOTATIONS_CREATED"})


_CLIENT_ERROR = re.compile(r"answered (4\d\d)\b")


def is_forced(reason: str) -> bool:
    """Start Training, POST /train, POST /jobs: a person asked, so no cadence or back-off holds it."""
    return reason not in ANNOTATION_EVENTS and not reason.startswith("retry of ")


def is_transient(exc: BaseException) -> bool:
    """Whether running the job again later may succeed: Label Studio or the LLM provider was
    unreachable or failed (``UpstreamError``), but not a setting to fix (missing or refused
    API key), a request Label Studio refused (4xx other than 408/429: e.g. a project it does
    not have), a bad config or a bug."""
    from backend.errors import UpstreamError

    if not isinstance(exc, UpstreamError) or "API_KEY" in exc.message:
        return False
    m = _CLIENT_ERROR.search(exc.message)
    return m is None or m.group(1) in ("408", "429")


def run_job(kind: str, project_id: int, reason: str = "", job_id: str | None = None,
            backend: MLBackend | None = None) -> dict:
    """Run one job with ``backend`` (the server injects its own, so jobs use the models it has
    loaded); an RQ worker passes none and uses its process-wide one built from the environment."""
    if kind not in KINDS:
        raise ValueError(f"unknown job kind {kind!r}: expected one of {', '.join(KINDS)}")
    if backend is None:
        from backend.ml import runtime

        backend = runtime()
    t0 = time.perf_counter()
    log.info("job %s: %s project %s (%s)", job_id, kind, project_id, reason)
    if kind == "train":
        out = backend.fit(project_id, event=reason or "START_TRAINING")
    elif kind == "prelabel":
        from backend.prelabel import prelabel_project

        out = prelabel_project(backend, project_id)
    elif kind == "rescore":
        from backend.prelabel import rescore_project

        out = rescore_project(backend, project_id)
    else:
        from backend.selection_job import select_for_project

        out = select_for_project(backend, project_id)
    out.setdefault("seconds", round(time.perf_counter() - t0, 3))
    log.info("job %s: %s project %s -> %s", job_id, kind, project_id, out.get("status", "done"))
    return out
