"""Label Studio down for many projects while one real project keeps labelling: the scenario of
issue 19's probe (61 queued jobs of 30 projects made a real project wait ~16 minutes behind one
job thread). Shared by ``tests/faults/test_job_fairness.py`` (asserts) and ``bench_faults``
(counts)."""
from __future__ import annotations

import time

import requests

from tests.faults.harness import hausa, setup


def _hook(url: str, project: int, auth=None, prefix: str = "") -> dict:
    r = requests.post(f"{url}{prefix}/webhook", json={"action": "ANNOTATION_CREATED", "project": {"id": project},
                                                       "annotation": {"id": 1}}, auth=auth, timeout=10)
    assert r.status_code in (200, 201), r.text
    return r.json()


def _all_jobs(url: str, auth=None) -> list[dict]:
    return requests.get(f"{url}/jobs", params={"limit": 500}, auth=auth, timeout=10).json()["jobs"]


def outage(url: str, fake, failing: range, healthy: int, auth=None, prefix: str = "", timeout: float = 600) -> dict:
    """Connect every project, break Label Studio for ``failing`` (connections dropped), queue two
    webhooks per failing project, wait until each has failed once, queue more, then time how long
    a webhook of ``healthy`` waits before its training starts."""
    data = hausa(20)
    for tid, (_, regs) in zip(fake.add_tasks(healthy, [t for t, _ in data]), data):
        fake.annotate(healthy, tid, regs)
    for p in [*failing, healthy]:
        setup(url, p, auth=auth)
    fake.fault, fake.fault_projects = "drop", frozenset(failing)
    for _ in range(2):
        for p in failing:
            _hook(url, p, auth, prefix)
    end = time.monotonic() + timeout
    while True:
        failed = {j["project_id"] for j in _all_jobs(url, auth) if j["status"] == "failed"}
        if failed >= set(failing):
            break
        assert time.monotonic() < end, f"only {len(failed)} of {len(failing)} projects failed in {timeout} s"
        time.sleep(0.5)
    for p in failing:  # the webhooks keep coming
        _hook(url, p, auth, prefix)
    t0 = time.time()
    job = _hook(url, healthy, auth, prefix)["job"]
    while True:
        rec = requests.get(f"{url}/jobs/{job}", auth=auth, timeout=10).json()
        if rec.get("started_at"):
            break
        assert time.monotonic() < end, "the healthy project's job never started"
        time.sleep(0.05)
    waited = rec["started_at"] - t0
    while rec["status"] in ("queued", "running"):
        time.sleep(0.2)
        rec = requests.get(f"{url}/jobs/{job}", auth=auth, timeout=10).json()
    jobs = _all_jobs(url, auth)
    failed_jobs = [j for j in jobs if j["status"] == "failed" and j["project_id"] != healthy]
    lengths = [j["ended_at"] - j["started_at"] for j in failed_jobs if j.get("started_at")]
    page = requests.get(f"{url}/jobs", params={"limit": 10}, auth=auth, timeout=10).json()
    fake.fault, fake.fault_projects = None, frozenset()
    return {"failing_projects": len(failing), "jobs_listed_total": page["total"], "page_size": len(page["jobs"]),
            "healthy_wait_s": round(waited, 2), "healthy_status": rec["status"],
            "failing_job_s_max": round(max(lengths), 2) if lengths else None,
            "failed_jobs": len(failed_jobs),
            "held_by_back_off": sum(j["status"] == "queued" and j["project_id"] != healthy for j in jobs)}
