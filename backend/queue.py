"""One job-queue interface, two implementations: a background thread of the server (default, no
Redis) and RQ on Redis (``REDIS_URL`` set; jobs run in ``rq worker`` processes).

Both coalesce bursts: for each (kind, project) at most one job runs and one waits. An event that
arrives while a job is already waiting joins that job (it will read the newest annotations anyway),
so a storm of 1,000 webhooks costs at most two trainings. Job records are kept so ``GET /jobs``
shows queued, running, finished and failed jobs with their reason.
"""
from __future__ import annotations

import logging
import threading
import time
import traceback
import uuid
from abc import ABC, abstractmethod
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from backend.jobs import KINDS, run_job
from backend.model_store import read_json, write_json_atomic

log = logging.getLogger(__name__)
ACTIVE = ("queued", "running")


def _error_text(exc: BaseException) -> str:
    msg = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {msg}"[:2000]


class JobQueue(ABC):
    @abstractmethod
    def submit(self, kind: str, project_id: int, reason: str = "") -> dict:
        """Queue a job or join the one already waiting; returns its record (``coalesced`` flag)."""

    @abstractmethod
    def get(self, job_id: str) -> dict | None: ...

    @abstractmethod
    def list(self, project_id: int | None = None, limit: int = 50) -> list[dict]: ...

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


def _leave_a_core_for_requests() -> None:
    """Training in a thread of the server must not take every core: torch would then starve the
    HTTP threads and /webhook could miss Label Studio's 1 s timeout (seen under a storm)."""
    import os

    import torch

    want = int(os.environ.get("TRAIN_THREADS") or max(1, (os.cpu_count() or 2) - 1))
    if torch.get_num_threads() != want:
        torch.set_num_threads(want)


class InProcessQueue(JobQueue):
    """Jobs run in a thread pool of this process; records live in ``MODEL_DIR/jobs`` so they
    survive a restart, and jobs a restart interrupted are reported and run again."""

    def __init__(self, model_dir: Path, workers: int = 1, runner=run_job):
        self.dir = Path(model_dir) / "jobs"
        self.dir.mkdir(parents=True, exist_ok=True)
        self._runner = runner
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="job")
        self._lock = threading.Lock()
        self._running: dict[tuple[str, int], str] = {}
        self._pending: dict[tuple[str, int], str] = {}
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
                self.submit(rec["kind"], rec["project_id"], reason=f"retry of {rec['id']}")

    def submit(self, kind: str, project_id: int, reason: str = "") -> dict:
        if kind not in KINDS:
            raise ValueError(f"unknown job kind {kind!r}")
        key = (kind, int(project_id))
        with self._lock:
            if key in self._pending:
                rec = self.get(self._pending[key]) or {}
                return {**rec, "coalesced": True}
            rec = {"id": uuid.uuid4().hex[:12], "kind": kind, "project_id": int(project_id), "reason": reason,
                   "status": "queued", "created_at": time.time(), "backend": "in-process"}
            self._save(rec)
            if key in self._running:
                self._pending[key] = rec["id"]
            else:
                self._running[key] = rec["id"]
                self._pool.submit(self._run, rec)
        return {**rec, "coalesced": False}

    def _run(self, rec: dict) -> None:
        _leave_a_core_for_requests()
        key = (rec["kind"], rec["project_id"])
        rec.update(status="running", started_at=time.time())
        self._save(rec)
        try:
            rec["result"] = self._runner(rec["kind"], rec["project_id"], rec.get("reason", ""), rec["id"])
            rec["status"] = "finished"
        except BaseException as e:  # noqa: BLE001 - a job failure is recorded, never kills the worker
            rec.update(status="failed", error=_error_text(e))
            log.warning("job %s (%s project %s) failed: %s", rec["id"], rec["kind"], rec["project_id"], rec["error"])
            log.debug("job %s traceback:\n%s", rec["id"], traceback.format_exc())
        rec["ended_at"] = time.time()
        self._save(rec)
        with self._lock:
            nxt = self._pending.pop(key, None)
            if nxt is None:
                self._running.pop(key, None)
                return
            self._running[key] = nxt
            nrec = self.get(nxt)
        self._pool.submit(self._run, nrec)

    def get(self, job_id: str) -> dict | None:
        if not job_id or not all(c.isalnum() or c in "-_" for c in job_id):
            return None
        return read_json(self._path(job_id))

    def list(self, project_id: int | None = None, limit: int = 50) -> list[dict]:
        files = sorted(self.dir.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
        out = []
        for p in files:
            rec = read_json(p)
            if rec and (project_id is None or rec.get("project_id") == project_id):
                out.append(rec)
                if len(out) >= limit:
                    break
        return out

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def make_queue(settings) -> JobQueue:
    if settings.redis_url:
        from backend.rq_queue import RQQueue

        return RQQueue(settings.redis_url)
    return InProcessQueue(settings.model_dir, workers=int(settings.env.get("JOB_THREADS", "1") or 1))
