"""Bursts coalesce (one running + one pending per project); records survive a restart."""
from __future__ import annotations

import threading
import time

from backend.model_store import write_json_atomic
from backend.queue import InProcessQueue


class BlockingRunner:
    def __init__(self):
        self.release = threading.Event()
        self.calls: list[tuple[str, int]] = []
        self.active = 0
        self.max_active_per_project: dict[int, int] = {}
        self._lock = threading.Lock()

    def __call__(self, kind, project_id, reason, job_id):
        with self._lock:
            self.calls.append((kind, project_id))
            self.active += 1
            self.max_active_per_project[project_id] = max(self.max_active_per_project.get(project_id, 0), 1)
        self.release.wait(10)
        with self._lock:
            self.active -= 1
        if reason == "boom":
            raise RuntimeError("fit exploded")
        return {"status": "trained"}


def test_storm_coalesces_to_one_running_and_one_pending(tmp_path):
    runner = BlockingRunner()
    q = InProcessQueue(tmp_path, runner, workers=2, limit_torch_threads=False)
    first = q.submit("train", 1, "ANNOTATION_CREATED")
    time.sleep(0.1)
    recs = [q.submit("train", 1, "ANNOTATION_CREATED") for _ in range(500)]
    assert not first["coalesced"]
    assert not recs[0]["coalesced"] and all(r["coalesced"] for r in recs[1:])
    assert len({r["id"] for r in recs}) == 1  # every later event joined the one pending job
    runner.release.set()
    assert q.wait(recs[0]["id"], 10)["status"] == "finished"
    assert q.get(first["id"])["status"] == "finished"
    assert runner.calls == [("train", 1), ("train", 1)]
    q.close()


def test_failure_is_recorded_with_reason(tmp_path):
    runner = BlockingRunner()
    runner.release.set()
    q = InProcessQueue(tmp_path, runner, limit_torch_threads=False)
    rec = q.wait(q.submit("train", 2, "boom")["id"], 10)
    assert rec["status"] == "failed" and "fit exploded" in rec["error"]
    ok = q.wait(q.submit("train", 2, "next event")["id"], 10)
    assert ok["status"] == "finished"  # the next event recovers
    q.close()


def test_interrupted_jobs_are_reported_and_rerun_after_restart(tmp_path):
    write_json_atomic(tmp_path / "jobs" / "abc123.json",
                      {"id": "abc123", "kind": "train", "project_id": 4, "status": "running", "reason": "x"})
    runner = BlockingRunner()
    runner.release.set()
    q = InProcessQueue(tmp_path, runner, limit_torch_threads=False)
    old = q.get("abc123")
    assert old["status"] == "failed" and "interrupted" in old["error"]
    deadline = time.time() + 10
    while not runner.calls and time.time() < deadline:
        time.sleep(0.05)
    assert runner.calls == [("train", 4)]
    q.close()


# -- fairness, back-off, pages (issue 19.5) ---------------------------------------------------------
def _wait_for(pred, timeout: float = 20.0, what: str = "condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if (v := pred()):
            return v
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


class LabelStudioDown:
    """Every project but ``healthy`` fails the way a training does when Label Studio is down."""

    def __init__(self, job_s: float, healthy: int):
        self.job_s, self.healthy = job_s, healthy
        self.starts: dict[int, list[float]] = {}
        self._lock = threading.Lock()

    def __call__(self, kind, project_id, reason, job_id):
        from backend.errors import UpstreamError

        with self._lock:
            self.starts.setdefault(project_id, []).append(time.time())
        time.sleep(self.job_s)
        if project_id != self.healthy:
            raise UpstreamError("Label Studio at http://ls:8080 is unreachable for listing tasks: ConnectError")
        return {"status": "trained"}


def test_healthy_project_starts_within_one_job_while_30_projects_fail(tmp_path):
    """The probe's case: Label Studio down for 30 projects with many queued jobs; a real project
    waited ~16 minutes behind them (one FIFO thread). Now it waits at most the running job."""
    from backend.queue import Backoff

    job_s = 0.3
    runner = LabelStudioDown(job_s, healthy=99)
    q = InProcessQueue(tmp_path, runner, workers=1, backoff=Backoff(base=2.0, cap=4.0, retries=3),
                       limit_torch_threads=False)
    failing = range(1, 31)
    for _ in range(3):  # a running + a pending job per project, the rest coalesced
        for p in failing:
            q.submit("train", p, "ANNOTATION_CREATED")
    _wait_for(lambda: all(runner.starts.get(p) for p in failing), 30, "every failing project to run once")
    for p in failing:  # webhooks keep coming while Label Studio is down
        q.submit("train", p, "ANNOTATION_CREATED")
    for trial in range(3):
        t0 = time.time()
        rec = q.submit("train", 99, "START_TRAINING")
        done = q.wait(rec["id"], 20)
        assert done["status"] == "finished"
        waited = done["started_at"] - t0
        assert waited <= job_s + 0.25, f"healthy project waited {waited:.2f} s (one job is {job_s} s)"
        time.sleep(0.4)
    # the failing projects were retried, each attempt after its back-off, not back to back
    gaps = [b - a for p in failing for a, b in zip(runner.starts[p], runner.starts[p][1:])]
    assert gaps and min(gaps) >= 2.0 - 0.05, min(gaps)
    failed = [r for r in q.page(limit=500)["jobs"] if r["status"] == "failed"]
    assert failed and all("unreachable" in r["error"] for r in failed)
    assert any(r["reason"].startswith("retry of ") for r in q.page(limit=500)["jobs"])
    q.close()


def test_one_projects_jobs_delay_another_by_at_most_one_job(tmp_path):
    job_s = 0.3
    starts: dict[tuple[str, int], float] = {}

    def runner(kind, project_id, reason, job_id):
        starts[(kind, project_id)] = time.time()
        time.sleep(job_s)
        return {"status": "done"}

    q = InProcessQueue(tmp_path, runner, workers=1, limit_torch_threads=False)
    first = q.submit("train", 1, "x")
    _wait_for(lambda: ("train", 1) in starts, 5, "project 1's first job")
    for kind in ("prelabel", "rescore", "select"):  # project 1 queues three more slow jobs
        q.submit(kind, 1, "x")
    t0 = time.time()
    other = q.wait(q.submit("train", 2, "x")["id"], 10)
    assert other["started_at"] - t0 <= job_s + 0.2  # right after project 1's running job
    assert other["started_at"] < min(starts.get((k, 1), 1e18) for k in ("prelabel", "rescore", "select"))
    assert q.wait(first["id"], 10)["status"] == "finished"
    q.close()


def test_upstream_failure_is_retried_after_a_growing_back_off_and_bad_config_is_not(tmp_path):
    from backend.errors import BadRequest, UpstreamError
    from backend.queue import Backoff

    calls: list[tuple[int, float]] = []

    def runner(kind, project_id, reason, job_id):
        calls.append((project_id, time.time()))
        if project_id == 1 and len([c for c in calls if c[0] == 1]) <= 2:
            raise UpstreamError("Label Studio answered 503 to listing tasks")
        if project_id == 2:
            raise BadRequest("project 2: no label_config")
        return {"status": "trained"}

    q = InProcessQueue(tmp_path, runner, backoff=Backoff(base=0.5, cap=10, retries=3), limit_torch_threads=False)
    q.submit("train", 1, "START_TRAINING")
    bad = q.wait(q.submit("train", 2, "START_TRAINING")["id"], 5)
    assert bad["status"] == "failed" and "no label_config" in bad["error"]
    _wait_for(lambda: len([c for c in calls if c[0] == 1]) == 3, 10, "two retries")
    t = [c[1] for c in calls if c[0] == 1]
    assert t[1] - t[0] >= 0.5 - 0.05 and t[2] - t[1] >= 1.0 - 0.05  # 0.5 s, then 1 s
    last = _wait_for(lambda: [r for r in q.page(1)["jobs"] if r["status"] == "finished"], 5, "the retry to end")
    assert last[0]["reason"].startswith("retry of ") and last[0]["attempt"] == 3
    time.sleep(0.3)
    assert len([c for c in calls if c[0] == 2]) == 1  # a bad config is not retried
    q.close()


def test_jobs_pages_state_the_total(tmp_path):
    runner = BlockingRunner()
    runner.release.set()
    q = InProcessQueue(tmp_path, runner, limit_torch_threads=False)
    ids = [q.wait(q.submit("train", p, "x")["id"], 10)["id"] for p in range(1, 8)]
    one = q.page(limit=3)
    assert one["total"] == 7 and len(one["jobs"]) == 3 and one["next_offset"] == 3
    last = q.page(limit=3, offset=6)
    assert len(last["jobs"]) == 1 and last["next_offset"] is None
    seen = [r["id"] for off in (0, 3, 6) for r in q.page(limit=3, offset=off)["jobs"]]
    assert sorted(seen) == sorted(ids)  # the pages cover every job exactly once
    assert q.page(project_id=4)["total"] == 1
    assert q.page(limit=10_000)["limit"] == 500
    q.close()


def test_start_training_lifts_the_back_off_and_a_refused_request_is_not_retried(tmp_path):
    """After an outage a person's Start Training runs at once (Label Studio just sent it), while
    annotation events wait out the back-off; a 404 from Label Studio (a project it does not have)
    is not an outage: no retry, no back-off."""
    from backend.errors import UpstreamError
    from backend.queue import Backoff

    calls: list[tuple[int, str, float]] = []
    down = [True]

    def runner(kind, project_id, reason, job_id):
        calls.append((project_id, reason, time.time()))
        if project_id == 1 and down[0]:
            raise UpstreamError("Label Studio at http://ls is unreachable for listing tasks: ConnectError")
        if project_id == 2:
            raise UpstreamError("Label Studio answered 404 to listing tasks")
        return {"status": "trained"}

    q = InProcessQueue(tmp_path, runner, backoff=Backoff(base=30, cap=60, retries=3), limit_torch_threads=False)
    assert q.wait(q.submit("train", 1, "ANNOTATION_CREATED")["id"], 5)["status"] == "failed"
    held = q.submit("train", 1, "ANNOTATION_CREATED")  # joins the retry, held for 30 s
    time.sleep(0.3)
    assert q.get(held["id"])["status"] == "queued"
    down[0] = False  # Label Studio is back; the annotator presses Start Training
    t0 = time.time()
    forced = q.wait(q.submit("train", 1, "START_TRAINING")["id"], 5)
    assert forced["id"] == held["id"] and forced["status"] == "finished" and forced["started_at"] - t0 < 1
    for _ in range(2):
        assert q.wait(q.submit("train", 2, "ANNOTATION_CREATED")["id"], 5)["status"] == "failed"
    assert [c[1] for c in calls if c[0] == 2] == ["ANNOTATION_CREATED"] * 2  # no retries, no hold
    q.close()
