"""The same ``JobQueue`` on RQ + Redis, for several worker processes or machines.

Workers: ``rq worker --url $REDIS_URL --worker-class backend.rq_queue.LALWorker lal`` (a plain
``rq worker --url $REDIS_URL lal`` works too). They need ``backend`` importable (``PYTHONPATH``) and
the same ``MODEL_DIR`` (a shared volume) and Label Studio settings as the server.

Coalescing uses a Redis key per (kind, project) holding the id of the job that is waiting; the
job deletes it when it starts, so an event arriving during a run queues exactly one follow-up.

Why a heartbeat of our own: RQ 3.0 retries a job whose worker died (SIGKILL, OOM, lost machine)
only when registry cleanup finds its ``StartedJobRegistry`` entry expired, and that entry lives
``job_monitoring_interval + 60`` s past the last heartbeat while cleanup runs every 10 minutes, on
an idle worker. Here the job refreshes ``lal:alive:<id>`` every few seconds (``LAL_JOB_HEARTBEAT_TTL``,
default 10 s) and a reaper - a thread of every server process, and each ``LALWorker``'s maintenance
- hands jobs whose key expired to RQ's own abandoned-job path (retry while retries are left, else
``failed`` with ``AbandonedJobError``). A killed job never leaves a half-written model: the project
lock (``flock`` in ``MODEL_DIR``) dies with its holder and versions are published atomically.

Fairness and back-off: the ``lal`` queue is FIFO and coalescing leaves each (kind, project) at
most one job waiting in it, so one healthy project's jobs delay another's by at most one job. A
job that fails on an unreachable upstream (Label Studio down) is retried after
``JOB_BACKOFF_S * 2**(n-1)`` s, and while that back-off runs (``lal:failing:<project>``) every job
of the project goes to the ``lal-failing`` queue, which workers serve only when ``lal`` is empty
(RQ dequeues from its queues in order; ``LALWorker`` adds ``lal-failing`` after ``lal`` itself, a
plain worker must name both: ``rq worker --url $REDIS_URL lal lal-failing``). Before, failed jobs
were retried at once at the back of the one FIFO, so 30 failing projects queued ahead of a
healthy one.

Deferred jobs (back-off retries, trainings the retrain cadence holds back) wait in RQ's
``ScheduledJobRegistry``. RQ moves them to their queue only in a worker started with
``--with-scheduler``; here the reaper loop also enqueues the scheduled jobs that are due
(``promote_due``), so a plain ``rq worker`` deployment keeps every deferred job.
"""
from __future__ import annotations

import importlib
import math
import logging
import os
import socket
import sys
import threading
import time
from datetime import datetime, timezone

from backend.cadence import Cadence, cadence_from_settings
from backend.jobs import is_transient
from backend.queue import Backoff, JobQueue

log = logging.getLogger(__name__)
QUEUE_NAME = "lal"
FAILING_QUEUE = "lal-failing"
JOB_TIMEOUT = 3600
_PENDING = "lal:pending:{kind}:{pid}"
_ALIVE = "lal:alive:{job_id}"
_REAP_LOCK = "lal:reaper"
_FAILING = "lal:failing:{pid}"
_STATUS = {"queued": "queued", "deferred": "queued", "scheduled": "queued", "started": "running",
           "finished": "finished", "failed": "failed", "stopped": "failed", "canceled": "failed"}


def _runner(spec: str | None):
    """The job function: ``backend.jobs.run_job``, or ``LAL_JOB_RUNNER=module:function`` (same
    signature; ``Settings.job_runner``) - used by the deployment tests and the worker benchmark
    to run small jobs."""
    if not spec:
        from backend.jobs import run_job

        return run_job
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name or "run_job")


class _Heartbeat:
    """Keeps ``lal:alive:<job id>`` alive while the job runs (a daemon thread of the work horse)."""

    def __init__(self, conn, job_id: str, ttl: int):
        self.conn, self.key, self.ttl = conn, _ALIVE.format(job_id=job_id), ttl
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="lal-heartbeat", daemon=True)

    def _beat(self) -> None:
        while not self._stop.wait(self.ttl / 4):
            try:
                self.conn.set(self.key, socket.gethostname(), ex=self.ttl)
            except Exception as e:  # Redis blip: the next beat retries; the TTL leaves room for it
                log.warning("job heartbeat failed: %s", type(e).__name__)

    def __enter__(self) -> "_Heartbeat":
        self.conn.set(self.key, socket.gethostname(), ex=self.ttl)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)
        # left to expire, not deleted: RQ marks the job finished only after this returns, and a
        # reaper must not mistake that moment for a dead worker
        self.conn.set(self.key, "done", ex=self.ttl)


def rq_entry(kind: str, project_id: int, reason: str = "", job_id: str | None = None) -> dict:
    """What the RQ worker runs: clear the pending marker, beat, run the job.

    Errors the backend raised on purpose (bad config, LLM off, auth) are not retried: running
    again cannot fix them. Crashes and other exceptions use the job's remaining retries.
    """
    from rq import get_current_job

    from backend.errors import BackendError
    from backend.settings import Settings

    settings = Settings.from_env()
    job = get_current_job()
    if job is None:
        return _runner(settings.job_runner)(kind, project_id, reason, job_id)
    conn = job.connection
    job.meta["attempts"] = int(job.meta.get("attempts", 0)) + 1
    job.save_meta()
    key = _PENDING.format(kind=kind, pid=project_id)
    if (conn.get(key) or b"").decode() == job.id:
        conn.delete(key)
    cadence = cadence_from_settings(settings) if kind == "train" else None
    if cadence is not None:
        cadence.started(project_id)
    t0 = time.time()
    with _Heartbeat(conn, job.id, settings.job_heartbeat_ttl):
        try:
            out = _runner(settings.job_runner)(kind, project_id, reason, job.id)
        except BaseException as e:
            if isinstance(e, BackendError):
                job.retries_left = 0  # RQ's own retries stay for crashes (a killed worker)
            if is_transient(e):
                backoff = _backoff(settings)
                until = _note_failure(conn, project_id, backoff)
                attempt = int(job.meta.get("attempt", 1))
                if attempt <= backoff.retries:  # the trigger is not lost: tried again after the back-off
                    enqueue(conn, kind, project_id, f"retry of {job.id}", until, backoff, attempt + 1)
            raise
    conn.delete(_FAILING.format(pid=project_id))
    if cadence is not None:
        cadence.finished(project_id, time.time() - t0)
    return out


def _backoff(settings) -> Backoff:
    return Backoff(settings.job_backoff_s, settings.job_backoff_max_s, settings.job_retries)


def _note_failure(conn, project_id: int, backoff: Backoff) -> float:
    """Hold the project's next jobs for the back-off of its consecutive upstream failures; returns
    when the back-off ends. The mark outlives the back-off, so the project stays in the failing
    queue until a job of it succeeds."""
    key = _FAILING.format(pid=project_id)
    failures = int(conn.hincrby(key, "failures", 1))
    until = time.time() + backoff.delay(failures)
    conn.hset(key, "until", until)
    conn.expire(key, int(backoff.cap * 4 + 600))
    return until


def _queues(conn):
    from rq import Queue

    return Queue(QUEUE_NAME, connection=conn), Queue(FAILING_QUEUE, connection=conn)


def enqueue(conn, kind: str, project_id: int, reason: str, not_before: float | None, backoff: Backoff,
            attempt: int = 1) -> dict:
    """Queue a job, or join the one waiting for (kind, project): the server's submit and the
    worker's retry after an upstream failure both come here. A project in back-off goes to the
    failing queue and may not start before its back-off ends."""
    from rq import Retry
    from rq.job import Job
    from rq.registry import ScheduledJobRegistry

    healthy, failing = _queues(conn)
    mark = conn.hgetall(_FAILING.format(pid=project_id))
    queue = failing if mark else healthy
    if mark and float(mark.get(b"until") or 0) > time.time():
        not_before = max(not_before or 0.0, float(mark[b"until"]))
    key = _PENDING.format(kind=kind, pid=project_id)
    job_id = f"{kind}-{project_id}-{time.time_ns()}"
    ttl = JOB_TIMEOUT + int(backoff.cap)
    if not conn.set(key, job_id, nx=True, ex=ttl):
        existing = (conn.get(key) or b"").decode()
        rec = get_record(conn, existing) if existing else None
        if rec is not None and rec["status"] == "queued":
            if not mark and rec.get("not_before") and (not_before or 0) < rec["not_before"]:
                job = Job.fetch(existing, connection=conn)  # Start Training: the deferred job runs now
                if ScheduledJobRegistry(job.origin, connection=conn).remove(existing):
                    healthy.enqueue_job(job)
                    rec = get_record(conn, existing) or rec
            return {**rec, "coalesced": True}
        conn.set(key, job_id, ex=ttl)  # stale marker: the waiting job is gone
    # no retry interval for RQ's own retries (a killed worker): run again at once
    opts = dict(job_id=job_id, job_timeout=JOB_TIMEOUT, result_ttl=7 * 86400, failure_ttl=7 * 86400,
                description=f"{kind} project {project_id}", retry=Retry(max=max(1, backoff.retries)),
                meta={"not_before": not_before, "attempt": attempt})
    if not_before and not_before > time.time():
        # RQ keeps whole seconds (it floors): round up, or a deferred training starts up to 1 s early
        queue.enqueue_at(datetime.fromtimestamp(math.ceil(not_before), timezone.utc), rq_entry, kind, project_id,
                         reason,
                         **opts)
    else:
        queue.enqueue(rq_entry, kind, project_id, reason, **opts)
    return {**(get_record(conn, job_id) or {"id": job_id, "status": "queued"}), "coalesced": False}


def promote_due(conn, queue) -> list[str]:
    """Enqueue the scheduled jobs (back-off retries, deferred trainings) whose time has come, as
    RQ's scheduler would; ``zrem`` decides which process moves a job, so many may call this."""
    from rq.exceptions import NoSuchJobError
    from rq.job import Job
    from rq.registry import ScheduledJobRegistry

    reg = ScheduledJobRegistry(queue=queue)
    moved = []
    for job_id in reg.get_jobs_to_schedule(int(time.time())):
        if not reg.remove(job_id):
            continue  # another process moved it
        try:
            queue.enqueue_job(Job.fetch(job_id, connection=conn))
        except NoSuchJobError:
            continue
        moved.append(job_id)
    return moved


def reap_abandoned(conn, queue, grace: float) -> list[str]:
    """Hand started jobs whose heartbeat expired (their worker died) to RQ's abandoned-job
    cleanup, which retries them or marks them failed. Returns their ids. Safe to call from many
    processes: a short Redis lock lets one reaper act at a time."""
    from rq.exceptions import NoSuchJobError
    from rq.job import Job, JobStatus
    from rq.registry import StartedJobRegistry

    if not conn.set(_REAP_LOCK, os.getpid(), nx=True, ex=5):
        return []
    try:
        reg = StartedJobRegistry(queue=queue)
        dead: dict[bytes, str] = {}
        for entry in conn.zrange(reg.key, 0, -1):
            job_id = reg.parse_job_id(entry)
            if conn.exists(_ALIVE.format(job_id=job_id)):
                continue
            try:
                job = Job.fetch(job_id, connection=conn)
            except NoSuchJobError:
                continue
            started = job.started_at.timestamp() if job.started_at else None
            if job.get_status() != JobStatus.STARTED or (started and time.time() - started < grace):
                continue  # finished meanwhile, or not yet beating (horse starting up)
            dead[entry] = job_id
        if dead:
            # score 0 = "expired long ago": RQ's cleanup then handles exactly these entries
            conn.zadd(reg.key, {e: 0 for e in dead}, xx=True)
            reg.cleanup(timestamp=0)
            log.warning("reaped %d job(s) of dead workers: %s", len(dead), ", ".join(dead.values()))
        return list(dead.values())
    finally:
        conn.delete(_REAP_LOCK)


def get_record(conn, job_id: str) -> dict | None:
    """A job's record as ``GET /jobs/<id>`` shows it (None for an unknown id)."""
    from rq.exceptions import NoSuchJobError
    from rq.job import Job

    if not job_id or not all(c.isalnum() or c in "-_" for c in job_id):
        return None
    try:
        job = Job.fetch(job_id, connection=conn)
    except NoSuchJobError:
        return None
    status = job.get_status(refresh=True)
    status = getattr(status, "value", status)
    if status in ("finished", "failed", "stopped") and job.ended_at is None:
        job.refresh()  # it ended between the fetch and the status read: re-read its fields
    args = job.args or ("?", 0, "")
    rec = {"id": job.id, "kind": args[0], "project_id": args[1], "reason": args[2] if len(args) > 2 else "",
           "status": _STATUS.get(str(status), str(status)), "backend": "rq", "queue": job.origin,
           "attempts": int((job.meta or {}).get("attempts", 0)),
           "worker": job.worker_name or None,
           "created_at": job.created_at.timestamp() if job.created_at else None,
           "started_at": job.started_at.timestamp() if job.started_at else None,
           "ended_at": job.ended_at.timestamp() if job.ended_at else None,
           "not_before": (job.meta or {}).get("not_before") if status == "scheduled" else None}
    if rec["status"] == "finished":
        rec["result"] = job.return_value()
    elif rec["status"] == "failed":
        latest = job.latest_result()
        exc = (latest.exc_string if latest else None) or ""
        lines = [ln for ln in exc.strip().splitlines() if ln.strip()]
        rec["error"] = lines[-1][:2000] if lines else "failed"
    return rec


class RQQueue(JobQueue):
    def __init__(self, redis_url: str, reap_interval: float = 5.0, cadence: Cadence | None = None,
                 backoff: Backoff = Backoff(), heartbeat_ttl: int = 10):
        """``reap_interval`` (``LAL_REAP_INTERVAL``, 0: no reaper thread) and ``heartbeat_ttl``
        (``LAL_JOB_HEARTBEAT_TTL``, the workers' setting: a started job whose heartbeat is older
        is taken for dead) come from ``Settings``."""
        from redis import Redis

        self.conn = Redis.from_url(redis_url)
        self.queue, self.failing = _queues(self.conn)
        self.cadence = cadence
        self.backoff = backoff
        interval = float(reap_interval)
        self.heartbeat_ttl = heartbeat_ttl
        self._stop = threading.Event()
        self._reaper = None
        if interval > 0:
            self._reaper = threading.Thread(target=self._reap_loop, args=(interval,), name="lal-reaper", daemon=True)
            self._reaper.start()

    def _reap_loop(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                for q in (self.queue, self.failing):
                    reap_abandoned(self.conn, q, self.heartbeat_ttl)
                    promote_due(self.conn, q)
            except Exception as e:  # Redis down for a moment: try again next round
                log.warning("job reaper: %s: %s", type(e).__name__, e)

    def _enqueue(self, kind: str, project_id: int, reason: str, not_before: float | None) -> dict:
        return enqueue(self.conn, kind, project_id, reason, not_before, self.backoff)

    def _release(self, project_id: int) -> None:
        self.conn.delete(_FAILING.format(pid=project_id))

    def get(self, job_id: str) -> dict | None:
        return get_record(self.conn, job_id)

    def _records(self, project_id: int | None) -> list[dict]:
        from rq.registry import (DeferredJobRegistry, FailedJobRegistry, FinishedJobRegistry,
                                 ScheduledJobRegistry, StartedJobRegistry)

        ids: list[str] = []
        for q in (self.queue, self.failing):
            ids += q.job_ids
            for reg in (StartedJobRegistry, ScheduledJobRegistry, DeferredJobRegistry, FinishedJobRegistry,
                        FailedJobRegistry):
                ids += reg(queue=q).get_job_ids()
        recs = [r for r in (self.get(i) for i in dict.fromkeys(ids)) if r is not None]
        if project_id is not None:
            recs = [r for r in recs if r["project_id"] == project_id]
        return sorted(recs, key=lambda r: r.get("created_at") or 0, reverse=True)

    def close(self) -> None:
        self._stop.set()


def _worker_class():
    from rq import Queue, Worker

    class LALWorker(Worker):
        """``rq worker --worker-class backend.rq_queue.LALWorker lal``: imports the job code (and
        torch, which does not initialise CUDA) once in the parent instead of in every forked job
        (importing torch takes seconds; a small training job well under one),
        and reaps jobs of dead workers at each maintenance tick (``--maintenance-interval``).
        A worker of ``lal`` also serves ``lal-failing``, after it (see the module docstring)."""

        def __init__(self, queues, *args, **kwargs):
            qs = [queues] if isinstance(queues, (str, Queue)) else list(queues)
            names = [q if isinstance(q, str) else q.name for q in qs]
            if QUEUE_NAME in names and FAILING_QUEUE not in names:
                qs.append(FAILING_QUEUE if isinstance(qs[0], str) else Queue(FAILING_QUEUE, connection=qs[0].connection))
            super().__init__(qs, *args, **kwargs)
            from backend.settings import Settings

            self.settings = Settings.from_env()  # a bad setting stops the worker at start, named
            if self.settings.worker_preload:
                # torch._dynamo: the first torch.optim optimiser of a process imports it (~5-10 s)
                for module in ("backend.ml", "backend.ls_client", "model.ner.tagger", "model.textcat.classifier",
                               "torch._dynamo"):
                    importlib.import_module(module)

        def run_maintenance_tasks(self):
            super().run_maintenance_tasks()
            for q in self.queues:
                try:
                    reap_abandoned(self.connection, q, self.settings.job_heartbeat_ttl)
                    promote_due(self.connection, q)
                except Exception as e:
                    self.log.warning("job reaper: %s: %s", type(e).__name__, e)

    return LALWorker


def __getattr__(name: str):
    # rq imports the worker class by dotted path; built lazily so the server never imports rq's Worker
    if name == "LALWorker":
        cls = _worker_class()
        globals()["LALWorker"] = cls
        return cls
    raise AttributeError(name)


def _check() -> int:
    """Container health check of a worker: a worker of this host is registered on the queue."""
    from redis import Redis
    from rq import Queue, Worker

    from backend.settings import Settings

    redis_url = Settings.from_env().redis_url
    if not redis_url:
        print("REDIS_URL is not set")
        return 1
    conn = Redis.from_url(redis_url, socket_timeout=5)
    host = socket.gethostname()
    ok = any(w.hostname == host for w in Worker.all(queue=Queue(QUEUE_NAME, connection=conn)))
    print("worker registered" if ok else f"no worker of {host} on queue {QUEUE_NAME}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(_check() if sys.argv[1:] == ["check"] else 2)
