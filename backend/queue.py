"""One job-queue interface, two implementations: a background thread pool of the server (this
module, default, no Redis) and RQ on Redis (``backend/rq_queue.py``, ``REDIS_URL`` set). Which one
a server uses is decided in ``backend/queue_factory.py``; the function that runs a job is injected
(the server passes its own ``MLBackend``), so this module imports no job code.

Both coalesce bursts: for each (kind, project) at most one job runs and one waits. An event that
arrives while a job is already waiting joins that job (it will read the newest annotations anyway),
so a storm of 1,000 webhooks costs at most two trainings. Job records are kept so ``GET /jobs``
shows queued, running, finished and failed jobs with their reason, a page at a time.

Both apply the retrain cadence (``backend/cadence.py``): annotation events train only every
``TRAIN_EVERY_N`` new annotations and at most once per ``TRAIN_MIN_INTERVAL_S``; a trigger the
interval holds back becomes a deferred job that runs when the interval has elapsed.

Fairness (in-process): one thread used to serve every project in arrival order, so with Label
Studio down 61 queued jobs of 30 projects made a real project wait ~16 minutes. Now the next job
is the ready one of the project served least recently, projects whose last job failed come after
every healthy one, and a job that failed on Label Studio being unreachable is retried after an
exponential back-off instead of being tried again at once. A project's jobs can therefore delay
another project's by at most the one job that is already running.
"""
from __future__ import annotations

import logging
import threading
import time
import traceback
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from backend.cadence import Cadence
from backend.jobs import KINDS, is_forced, is_transient
from backend.model_store import read_json, write_json_atomic

log = logging.getLogger(__name__)
ACTIVE = ("queued", "running")
Runner = Callable[[str, int, str, str], dict]
MAX_PAGE = 500


def _error_text(exc: BaseException) -> str:
    msg = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {msg}"[:2000]


@dataclass(frozen=True)
class Backoff:
    """Retries of jobs that failed on an unreachable upstream: ``base * 2**(n-1)`` s after the
    n-th consecutive failure, at most ``cap`` s, ``retries`` automatic attempts per trigger."""

    base: float = 10.0
    cap: float = 300.0
    retries: int = 3

    def delay(self, failures: int) -> float:
        return 0.0 if failures <= 0 else min(self.cap, self.base * 2 ** (failures - 1))


class JobQueue(ABC):
    cadence: Cadence | None = None

    def submit(self, kind: str, project_id: int, reason: str = "") -> dict:
        """Queue a job or join the one already waiting; returns its record (``coalesced`` flag).

        A training triggered by an annotation event goes through the cadence first: below
        ``TRAIN_EVERY_N`` new annotations nothing is queued (``status: "waiting"``, ``id`` None);
        inside ``TRAIN_MIN_INTERVAL_S`` of the last training it is queued with ``not_before``."""
        if kind not in KINDS:
            raise ValueError(f"unknown job kind {kind!r}")
        not_before = None
        if is_forced(reason):
            self._release(int(project_id))
        if kind == "train" and self.cadence is not None:
            decision = self.cadence.note_event(int(project_id), reason)
            if decision.waiting:
                return {"id": None, "kind": kind, "project_id": int(project_id), "status": "waiting",
                        "coalesced": True, "detail": decision.detail}
            not_before = decision.not_before
        return self._enqueue(kind, int(project_id), reason, not_before)

    @abstractmethod
    def _enqueue(self, kind: str, project_id: int, reason: str, not_before: float | None) -> dict:
        """Queue (or join) the job; it may not start before ``not_before`` (epoch seconds)."""

    def _release(self, project_id: int) -> None:
        """Lift the project's upstream back-off: a person asked for this job."""

    @abstractmethod
    def get(self, job_id: str) -> dict | None: ...

    @abstractmethod
    def _records(self, project_id: int | None) -> list[dict]:
        """Every job record (of one project), newest first."""

    def page(self, project_id: int | None = None, limit: int = 50, offset: int = 0) -> dict:
        """One page of job records, newest first, with the total so a client knows what it missed."""
        limit = max(1, min(MAX_PAGE, int(limit)))
        offset = max(0, int(offset))
        recs = self._records(project_id)
        jobs = recs[offset:offset + limit]
        nxt = offset + len(jobs)
        return {"jobs": jobs, "total": len(recs), "limit": limit, "offset": offset,
                "next_offset": nxt if nxt < len(recs) else None}

    def list(self, project_id: int | None = None, limit: int = 50) -> list[dict]:
        return self.page(project_id, limit)["jobs"]

    def wait(self, job_id: str, timeout: float = 60.0) -> dict | None:
        """Block until the job ends (tests, CLI); returns its record."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            rec = self.get(job_id)
            if rec is None or rec["status"] not in ACTIVE:
                return rec
            time.sleep(0.05)
        return self.get(job_id)

    def close(self) -> None:
        pass


def _leave_a_core_for_requests(threads: int | None) -> None:
    """Training in a thread of the server must not take every core: torch would then starve the
    HTTP threads and /webhook could miss Label Studio's 1 s timeout (seen under a storm)."""
    import os

    import torch

    want = threads or max(1, (os.cpu_count() or 2) - 1)
    if torch.get_num_threads() != want:
        torch.set_num_threads(want)


@dataclass
class _Health:
    """What the scheduler knows of a project: when it was last served and how it is failing."""

    last_started: float = 0.0
    failed: bool = False  # its last job failed: served after every healthy project
    failures: int = 0  # consecutive upstream failures: the back-off grows with them
    retry_after: float = 0.0


class InProcessQueue(JobQueue):
    """Jobs run in ``workers`` threads of this process; records live in ``MODEL_DIR/jobs`` so they
    survive a restart, and jobs a restart interrupted are reported and run again."""

    def __init__(self, model_dir: Path, runner: Runner, workers: int = 1, cadence: Cadence | None = None,
                 backoff: Backoff = Backoff(), train_threads: int | None = None, limit_torch_threads: bool = True):
        self.dir = Path(model_dir) / "jobs"
        self.dir.mkdir(parents=True, exist_ok=True)
        self._runner = runner
        self.cadence = cadence
        self.backoff = backoff
        self._train_threads = train_threads
        self._limit_torch = limit_torch_threads
        self._cond = threading.Condition()
        self._running: dict[tuple[str, int], str] = {}
        self._pending: dict[tuple[str, int], dict] = {}
        self._health: dict[int, _Health] = {}
        self._closed = False
        self._threads = [threading.Thread(target=self._work, name=f"job-{i}", daemon=True)
                         for i in range(max(1, workers))]
        for t in self._threads:
            t.start()
        self._recover()

    def _path(self, job_id: str) -> Path:
        return self.dir / f"{job_id}.json"

    def _save(self, rec: dict) -> None:
        write_json_atomic(self._path(rec["id"]), rec)

    def _recover(self) -> None:
        for p in sorted(self.dir.glob("*.json")):
            rec = read_json(p)
            if rec and rec.get("status") in ACTIVE:
                rec.update(status="failed", error="interrupted: the server stopped before this job ended; "
                           "queued again", ended_at=time.time())
                self._save(rec)
                self._enqueue(rec["kind"], rec["project_id"], f"retry of {rec['id']}", rec.get("not_before"))

    def _enqueue(self, kind: str, project_id: int, reason: str, not_before: float | None,
                 attempt: int = 1) -> dict:
        key = (kind, project_id)
        with self._cond:
            pending = self._pending.get(key)
            if pending is not None:
                if (pending.get("not_before") or 0) > (not_before or 0):  # e.g. Start Training: run it sooner
                    pending["not_before"] = not_before
                    self._save(pending)
                    self._cond.notify_all()
                return {**pending, "coalesced": True}
            rec = {"id": uuid.uuid4().hex[:12], "kind": kind, "project_id": project_id, "reason": reason,
                   "status": "queued", "created_at": time.time(), "backend": "in-process", "attempt": attempt,
                   "not_before": not_before}
            self._save(rec)
            self._pending[key] = rec
            self._cond.notify_all()
        return {**rec, "coalesced": False}

    def _ready_at(self, rec: dict) -> float:
        h = self._health.get(rec["project_id"])
        return max(rec.get("not_before") or 0.0, h.retry_after if h else 0.0)

    def _next(self) -> dict | None:
        """Block until a job may start and claim it: the ready job of the least recently served
        project, healthy projects before failing ones. None when the queue is closed."""
        with self._cond:
            while not self._closed:
                now = time.time()
                ready, wake = [], None
                for key, rec in self._pending.items():
                    if key in self._running:
                        continue
                    at = self._ready_at(rec)
                    if at <= now:
                        ready.append(rec)
                    else:
                        wake = at if wake is None else min(wake, at)
                if ready:
                    def order(r: dict) -> tuple:
                        h = self._health.get(r["project_id"]) or _Health()
                        return h.failed, h.last_started, r["created_at"]

                    rec = min(ready, key=order)
                    key = (rec["kind"], rec["project_id"])
                    del self._pending[key]
                    self._running[key] = rec["id"]
                    self._health.setdefault(rec["project_id"], _Health()).last_started = now
                    return rec
                self._cond.wait(None if wake is None else max(0.01, wake - now))
        return None

    def _work(self) -> None:
        while (rec := self._next()) is not None:
            self._run(rec)

    def _run(self, rec: dict) -> None:
        if self._limit_torch:
            _leave_a_core_for_requests(self._train_threads)
        key = (rec["kind"], rec["project_id"])
        pid = rec["project_id"]
        rec.update(status="running", started_at=time.time())
        self._save(rec)
        if rec["kind"] == "train" and self.cadence is not None:
            self.cadence.started(pid)
        failure: BaseException | None = None
        try:
            rec["result"] = self._runner(rec["kind"], pid, rec.get("reason", ""), rec["id"])
            rec["status"] = "finished"
        except BaseException as e:  # noqa: BLE001 - a job failure is recorded, never kills the worker
            failure = e
            rec.update(status="failed", error=_error_text(e))
            log.warning("job %s (%s project %s) failed: %s", rec["id"], rec["kind"], pid, rec["error"])
            log.debug("job %s traceback:\n%s", rec["id"], traceback.format_exc())
        rec["ended_at"] = time.time()
        if rec["kind"] == "train" and self.cadence is not None and failure is None:
            self.cadence.finished(pid, rec["ended_at"] - rec["started_at"])
        with self._cond:
            h = self._health.setdefault(pid, _Health())
            h.failed = failure is not None
            if failure is None or not is_transient(failure):
                h.failures, h.retry_after = 0, 0.0  # a bad config or a bug: running again at once is fine
            else:
                h.failures += 1
                h.retry_after = rec["ended_at"] + self.backoff.delay(h.failures)
                if rec.get("attempt", 1) <= self.backoff.retries:
                    rec["retry_after"] = h.retry_after
            self._save(rec)
            self._running.pop(key, None)
            self._cond.notify_all()
        if "retry_after" in rec:  # the trigger is not lost: tried again once the back-off has passed
            self._enqueue(rec["kind"], pid, f"retry of {rec['id']}", None, rec.get("attempt", 1) + 1)

    def _release(self, project_id: int) -> None:
        with self._cond:
            h = self._health.get(project_id)
            if h is not None:
                h.retry_after = 0.0
                self._cond.notify_all()

    def get(self, job_id: str) -> dict | None:
        if not job_id or not all(c.isalnum() or c in "-_" for c in job_id):
            return None
        return read_json(self._path(job_id))

    def _records(self, project_id: int | None) -> list[dict]:
        files = sorted(self.dir.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
        recs = (read_json(p) for p in files)
        return [r for r in recs if r and (project_id is None or r.get("project_id") == project_id)]

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
