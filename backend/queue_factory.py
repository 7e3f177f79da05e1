"""Which job queue a server uses: RQ when ``REDIS_URL`` is set, else the in-process thread pool.

Kept apart from both implementations so neither imports the other (``rq_queue`` builds on the
base class in ``queue``), and the job function comes in from the caller instead of a global.
"""
from __future__ import annotations

from backend.cadence import cadence_from_settings
from backend.queue import Backoff, InProcessQueue, JobQueue, Runner
from backend.settings import Settings


def make_queue(settings: Settings, runner: Runner) -> JobQueue:
    """``runner(kind, project_id, reason, job_id)`` runs a job in this process (in-process queue);
    RQ workers run ``backend.jobs.run_job`` with a backend of their own."""
    backoff = Backoff(settings.job_backoff_s, settings.job_backoff_max_s, settings.job_retries)
    cadence = cadence_from_settings(settings)
    if settings.redis_url:
        from backend.rq_queue import RQQueue

        return RQQueue(settings.redis_url, settings.reap_interval_s, cadence=cadence, backoff=backoff,
                       heartbeat_ttl=settings.job_heartbeat_ttl)
    return InProcessQueue(settings.model_dir, runner, workers=settings.job_threads, cadence=cadence,
                          backoff=backoff, train_threads=settings.train_threads)
