"""Job fairness against the real gunicorn backend (in-process queue) and the fake Label Studio:
with Label Studio down for other projects and their jobs queued, a real project's training starts
within one job's length, the failing projects back off, and /jobs pages show every job. Ten
failing projects here (each failing job is the client retrying for several seconds); the 30 of
the probe run in tests/backend/test_queue.py, tests/deploy/test_rq_workers.py and bench_faults."""
from __future__ import annotations

import pytest

from tests.faults.outage import outage

pytestmark = pytest.mark.slow


def test_label_studio_down_for_30_projects_a_real_project_waits_at_most_one_job(fake_ls, ls_env, backend_process,
                                                                               tmp_path):
    be = backend_process({**ls_env, "JOB_BACKOFF_S": "120"}, model_dir=tmp_path / "var")
    failing = range(1, 11)
    out = outage(be.url, fake_ls, failing, 99)
    assert out["healthy_status"] == "finished", out
    # one failing job is Label Studio's client retrying a dropped connection (a few seconds)
    assert out["healthy_wait_s"] <= out["failing_job_s_max"] + 2.0, out
    assert out["held_by_back_off"] >= len(failing) - 2, out  # their retries and new events wait out the back-off
    assert out["jobs_listed_total"] >= 2 * len(failing) + 1 and out["page_size"] == 10, out
