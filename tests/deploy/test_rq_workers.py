"""RQ scale-out against a real redis-server and two real ``rq worker`` processes: a storm of
training requests through the real gunicorn backend, per-project exclusion, job status over HTTP
and the CLI, and no lost job when a worker is SIGKILLed mid-job."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.conftest import NER_CONFIG, REPO

pytestmark = [pytest.mark.redis, pytest.mark.slow]
RUNNER = {"LAL_JOB_RUNNER": "tests.deploy.jobrunner:run_job"}


def intervals(model_dir: Path) -> dict[str, dict]:
    """job id -> {project, start, end, pid} from the job runner's log."""
    out: dict[str, dict] = {}
    path = model_dir / "intervals.jsonl"
    for line in path.read_text().splitlines() if path.exists() else []:
        r = json.loads(line)
        rec = out.setdefault(f"{r['job']}@{r['pid']}", {"job": r["job"], "project": r["project"]})
        rec[r["event"]] = r["t"]
        rec.update({k: r[k] for k in ("pid", "version") if k in r})
    return out


def assert_no_overlap(runs: list[dict]) -> None:
    by_project: dict[int, list[tuple[float, float]]] = {}
    for r in runs:
        by_project.setdefault(r["project"], []).append((r["start"], r.get("end", float("inf"))))
    for project, spans in by_project.items():
        spans.sort()
        for (s1, e1), (s2, _) in zip(spans, spans[1:]):
            assert s2 >= e1, f"project {project}: two trainings overlapped ({s1:.2f}-{e1:.2f} and {s2:.2f}-)"


def wait_jobs_done(url: str, timeout: float) -> list[dict]:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        jobs = requests.get(f"{url}/jobs", timeout=10).json()["jobs"]
        if jobs and all(j["status"] not in ("queued", "running") for j in jobs):
            return jobs
        time.sleep(0.5)
    raise AssertionError(f"jobs still active after {timeout}s: {jobs}")


def test_storm_of_webhooks_trains_each_project_once_at_a_time(redis_url, rq_workers, backend_process, tmp_path):
    model_dir = tmp_path / "var"
    workers = rq_workers(model_dir, RUNNER)
    workers.start("w1")
    workers.start("w2")
    backend = backend_process({"REDIS_URL": redis_url, "WORKERS": "2"}, model_dir=model_dir)
    assert requests.get(f"{backend.url}/health").json()["queue"] == "rq"
    projects = [11, 12, 13]
    for p in projects:
        r = requests.post(f"{backend.url}/setup", json={"project": f"{p}.1700000000", "schema": NER_CONFIG})
        assert r.ok, r.text
    workers.wait_registered(2)

    def fire(i: int) -> dict:
        p = projects[i % 3]
        r = requests.post(f"{backend.url}/webhook", timeout=5,
                          json={"action": "ANNOTATION_CREATED", "project": {"id": p}, "annotation": {"id": i}})
        assert r.status_code == 201, r.text
        return r.json()

    t0 = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(fire, range(90)))
    assert time.monotonic() - t0 < 30  # each webhook only enqueues
    assert sum(not a["coalesced"] for a in answers) <= 3 * 4  # bursts coalesce per project
    jobs = wait_jobs_done(backend.url, 150)

    assert {j["status"] for j in jobs} == {"finished"}, jobs
    assert {j["project_id"] for j in jobs} == set(projects)
    assert {j["worker"] for j in jobs} <= {"w1", "w2"}
    versions = requests.get(f"{backend.url}/versions").json()["projects"]
    for p in projects:
        assert versions[str(p)]["serving"]["version"], versions
        trained = [j for j in jobs if j["project_id"] == p]
        assert versions[str(p)]["serving"]["version"] == f"v{len(trained)}"
    runs = list(intervals(model_dir).values())
    assert len(runs) == len(jobs) and all("end" in r for r in runs)
    assert_no_overlap(runs)

    # job status through GET /jobs/<id> and the CLI
    one = requests.get(f"{backend.url}/jobs/{jobs[0]['id']}").json()
    assert one["status"] == "finished" and one["result"]["status"] == "trained"
    cli = subprocess.run([sys.executable, "-m", "backend", "--url", backend.url, "jobs", "--project", "12"],
                         cwd=REPO, capture_output=True, text=True, timeout=60)
    assert cli.returncode == 0, cli.stderr
    listed = json.loads(cli.stdout)["jobs"]
    assert listed and {j["project_id"] for j in listed} == {12}


def _wait(pred, timeout: float, what: str):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_sigkilled_worker_loses_no_job_and_leaves_no_half_written_model(redis_url, rq_workers, tmp_path):
    from backend.model_store import ModelStore
    from backend.rq_queue import RQQueue
    from model.local import LocalModel

    model_dir = tmp_path / "var"
    workers = rq_workers(model_dir, {**RUNNER, "LAL_TEST_SAVE_SLEEP": "3"})
    procs = {"w1": workers.start("w1"), "w2": workers.start("w2")}
    workers.wait_registered(2)
    q = RQQueue(redis_url, reap_interval=1)
    try:
        jobs = [q.submit("train", p, "START_TRAINING")["id"] for p in (21, 22, 23)]
        # wait until a job is inside save_version (artefacts written, meta.json not yet)
        victim = _wait(lambda: next((r for r in intervals(model_dir).values() if "end" not in r
                                     and list((model_dir / "projects" / str(r["project"]) / "versions").glob(".tmp-*"))),
                                    None), 120, "a job in the middle of saving")
        rec = q.get(victim["job"])
        assert rec["status"] == "running"
        # the machine dies: worker and its work horse, no chance to clean up
        os.killpg(procs[rec["worker"]].pid, signal.SIGKILL)
        os.kill(victim["pid"], signal.SIGKILL)
        t_kill = time.monotonic()
        procs[rec["worker"]].wait(10)

        _wait(lambda: (r := q.get(victim["job"]))["status"] != "running" and r, 30, "the reaper")
        reaped_after = time.monotonic() - t_kill
        assert reaped_after < 20, reaped_after  # heartbeat TTL 4 s + reaper every 1 s
        final = {j: q.wait(j, 120) for j in jobs}
        assert all(r["status"] == "finished" for r in final.values()), final
        assert final[victim["job"]]["attempts"] == 2  # the killed attempt, then the retry
    finally:
        q.close()

    store = ModelStore(model_dir)
    for p in (21, 22, 23):
        version = store.serving_version(p)
        assert version == "v1"  # the killed save published nothing
        vdir = store.version_dir(p, version)
        assert (vdir / "meta.json").exists()
        LocalModel.load(vdir / "model")
    leftovers = list((model_dir / "projects" / str(victim["project"]) / "versions").glob(".tmp-*"))
    assert leftovers  # the killed save's temp dir: never served ...
    assert store.cleanup_partial() == len(leftovers)  # ... and removed at the next server start
    assert_no_overlap([r for r in intervals(model_dir).values() if "end" in r])


def test_backend_error_is_failed_with_reason_and_not_retried(redis_url, rq_workers, tmp_path):
    """A real ``run_job`` with no Label Studio configured: failed at once, reason visible."""
    from backend.model_store import ModelStore
    from backend.rq_queue import RQQueue

    model_dir = tmp_path / "var"
    ModelStore(model_dir).save_project(31, label_config=NER_CONFIG)
    workers = rq_workers(model_dir, {"LABEL_STUDIO_URL": "", "LABEL_STUDIO_API_KEY": ""})
    workers.start("w1")
    workers.wait_registered(1)
    q = RQQueue(redis_url, reap_interval=0)
    try:
        rec = q.wait(q.submit("train", 31, "START_TRAINING")["id"], 90)
    finally:
        q.close()
    assert rec["status"] == "failed", rec
    assert "LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY must be set" in rec["error"]
    assert rec["attempts"] == 1


def _starts(model_dir: Path) -> list[dict]:
    path = model_dir / "starts.jsonl"
    return [json.loads(ln) for ln in path.read_text().splitlines()] if path.exists() else []


def test_label_studio_down_for_30_projects_does_not_hold_back_a_healthy_one(redis_url, rq_workers, tmp_path):
    """RQ had the in-process queue's problem: failed jobs were retried at once at the end of one
    FIFO, so a healthy project queued behind every failing project's retries. Now retries wait
    out a back-off in the scheduled registry and a failing project's new jobs are held as long."""
    from backend.queue import Backoff
    from backend.rq_queue import RQQueue

    job_s, healthy = 0.5, 99
    model_dir = tmp_path / "var"
    model_dir.mkdir()
    env = {"LAL_JOB_RUNNER": "tests.deploy.upstream_runner:run_job", "LAL_TEST_JOB_S": str(job_s),
           "LAL_TEST_HEALTHY": str(healthy), "LAL_PRELOAD": "false", "JOB_BACKOFF_S": "20",
           "JOB_BACKOFF_MAX_S": "60", "JOB_RETRIES": "2"}
    workers = rq_workers(model_dir, env)
    workers.start("w1")
    workers.wait_registered(1)
    q = RQQueue(redis_url, reap_interval=1, backoff=Backoff(20, 60, 2))
    try:
        failing = range(1, 31)
        for p in failing:
            q.submit("train", p, "ANNOTATION_CREATED")
        _wait(lambda: {s["project"] for s in _starts(model_dir)} >= set(failing), 90, "every project's first attempt")
        _wait(lambda: all(r["status"] != "running" for r in q.list(limit=500)), 30, "the last attempt to end")
        for p in failing:  # webhooks keep coming while Label Studio is down
            q.submit("train", p, "ANNOTATION_CREATED")
        t0 = time.time()
        rec = q.wait(q.submit("train", healthy, "START_TRAINING")["id"], 60)
        assert rec["status"] == "finished", rec
        waited = rec["started_at"] - t0
        assert waited <= job_s + 2.0, f"healthy project waited {waited:.1f} s (one job is {job_s} s)"
        page = q.page(limit=10)
        assert page["total"] >= 61 and len(page["jobs"]) == 10 and page["next_offset"] == 10
        held = [r for r in q.list(limit=500) if r["project_id"] != healthy and r["status"] == "queued"]
        assert held and all(r["queue"] == "lal-failing" for r in held), held[:3]  # behind every healthy job
    finally:
        q.close()


def test_deferred_training_runs_when_due_without_an_rq_scheduler(redis_url, rq_workers, tmp_path):
    """A trigger inside TRAIN_MIN_INTERVAL_S waits in RQ's scheduled registry; the workers run no
    scheduler (plain ``rq worker``), the server's reaper loop enqueues it when due."""
    from backend.cadence import Cadence
    from backend.model_store import ModelStore
    from backend.rq_queue import RQQueue

    model_dir = tmp_path / "var"
    model_dir.mkdir()
    env = {"LAL_JOB_RUNNER": "tests.deploy.upstream_runner:run_job", "LAL_TEST_JOB_S": "0.1",
           "LAL_TEST_HEALTHY": "5", "LAL_PRELOAD": "false", "TRAIN_MIN_INTERVAL_S": "3"}
    workers = rq_workers(model_dir, env)
    workers.start("w1")
    workers.wait_registered(1)
    cadence = Cadence(ModelStore(model_dir), every_n=1, min_interval_s=3)
    q = RQQueue(redis_url, reap_interval=0.5, cadence=cadence)
    try:
        first = q.wait(q.submit("train", 5, "ANNOTATION_CREATED")["id"], 30)
        assert first["status"] == "finished"
        assert cadence.state(5)["since_last"] == 0 and cadence.state(5)["last_seconds"] > 0  # set by the worker
        first_start = cadence.state(5)["last_started"]  # the interval counts from here (the worker's clock)
        burst = [q.submit("train", 5, "ANNOTATION_CREATED") for _ in range(10)]
        assert len({r["id"] for r in burst}) == 1 and burst[0]["status"] == "queued" and burst[0]["not_before"]
        done = q.wait(burst[0]["id"], 30)
        assert done["status"] == "finished", done
        assert done["started_at"] >= first_start + 3 - 0.05
        forced = q.submit("train", 5, "ANNOTATION_CREATED")  # deferred again ...
        assert forced["not_before"]
        now = q.submit("train", 5, "START_TRAINING")  # ... until Start Training pulls it forward
        assert now["id"] == forced["id"]
        assert q.wait(now["id"], 30)["started_at"] < forced["not_before"]
    finally:
        q.close()
