"""The same ``JobQueue`` on RQ + Redis, for several worker processes or machines.

Coalescing uses a Redis key per (kind, project) holding the id of the job that is waiting; the
job deletes it when it starts, so an event arriving during a run queues exactly one follow-up.
Jobs are enqueued with ``Retry`` so a job whose worker was SIGKILLed (RQ's abandoned-job cleanup)
runs again; the project lock (``flock`` in the shared ``MODEL_DIR``) is dropped by the OS when a
worker dies, and models are published atomically, so a killed job never leaves a half-written model.

Workers: ``rq worker --url $REDIS_URL lal`` (see README).
"""
from __future__ import annotations

import time

from backend.jobs import KINDS
from backend.queue import JobQueue

QUEUE_NAME = "lal"
JOB_TIMEOUT = 3600
_PENDING = "lal:pending:{kind}:{pid}"
_STATUS = {"queued": "queued", "deferred": "queued", "scheduled": "queued", "started": "running",
           "finished": "finished", "failed": "failed", "stopped": "failed", "canceled": "failed"}


def rq_entry(kind: str, project_id: int, reason: str = "", job_id: str | None = None) -> dict:
    """What the RQ worker runs: clear the pending marker, then the job itself."""
    from rq import get_current_job

    from backend.jobs import run_job

    job = get_current_job()
    if job is not None:
        key = _PENDING.format(kind=kind, pid=project_id)
        conn = job.connection
        if (conn.get(key) or b"").decode() == job.id:
            conn.delete(key)
        job_id = job.id
    return run_job(kind, project_id, reason, job_id)


class RQQueue(JobQueue):
    def __init__(self, redis_url: str):
        from redis import Redis
        from rq import Queue

        self.conn = Redis.from_url(redis_url)
        self.queue = Queue(QUEUE_NAME, connection=self.conn)

    def submit(self, kind: str, project_id: int, reason: str = "") -> dict:
        from rq import Retry

        if kind not in KINDS:
            raise ValueError(f"unknown job kind {kind!r}")
        key = _PENDING.format(kind=kind, pid=int(project_id))
        job_id = f"{kind}-{int(project_id)}-{time.time_ns()}"
        if not self.conn.set(key, job_id, nx=True, ex=JOB_TIMEOUT):
            existing = (self.conn.get(key) or b"").decode()
            rec = self.get(existing) if existing else None
            if rec is not None and rec["status"] == "queued":
                return {**rec, "coalesced": True}
            self.conn.set(key, job_id, ex=JOB_TIMEOUT)  # stale marker: the waiting job is gone
        self.queue.enqueue(rq_entry, kind, int(project_id), reason, job_id=job_id, job_timeout=JOB_TIMEOUT,
                           retry=Retry(max=2, interval=[1, 5]), result_ttl=7 * 86400, failure_ttl=7 * 86400,
                           description=f"{kind} project {project_id}")
        return {**(self.get(job_id) or {"id": job_id, "status": "queued"}), "coalesced": False}

    def get(self, job_id: str) -> dict | None:
        from rq.exceptions import NoSuchJobError
        from rq.job import Job

        try:
            job = Job.fetch(job_id, connection=self.conn)
        except NoSuchJobError:
            return None
        status = job.get_status(refresh=True)
        status = getattr(status, "value", status)
        args = job.args or ("?", 0, "")
        rec = {"id": job.id, "kind": args[0], "project_id": args[1], "reason": args[2] if len(args) > 2 else "",
               "status": _STATUS.get(str(status), str(status)), "backend": "rq",
               "created_at": job.created_at.timestamp() if job.created_at else None,
               "started_at": job.started_at.timestamp() if job.started_at else None,
               "ended_at": job.ended_at.timestamp() if job.ended_at else None}
        if rec["status"] == "finished":
            rec["result"] = job.return_value()
        elif rec["status"] == "failed":
            exc = (job.latest_result().exc_string if job.latest_result() else None) or ""
            lines = [ln for ln in exc.strip().splitlines() if ln.strip()]
            rec["error"] = lines[-1][:2000] if lines else "failed"
        return rec

    def list(self, project_id: int | None = None, limit: int = 50) -> list[dict]:
        from rq.registry import FailedJobRegistry, FinishedJobRegistry, StartedJobRegistry

        ids = list(self.queue.job_ids)
        for reg in (StartedJobRegistry, FinishedJobRegistry, FailedJobRegistry):
            ids += reg(queue=self.queue).get_job_ids()
        recs = [r for r in (self.get(i) for i in dict.fromkeys(ids)) if r is not None]
        if project_id is not None:
            recs = [r for r in recs if r["project_id"] == project_id]
        return sorted(recs, key=lambda r: r.get("created_at") or 0, reverse=True)[:limit]
