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
    q = InProcessQueue(tmp_path, workers=2, runner=runner)
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
    q = InProcessQueue(tmp_path, runner=runner)
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
    q = InProcessQueue(tmp_path, runner=runner)
    old = q.get("abc123")
    assert old["status"] == "failed" and "interrupted" in old["error"]
    deadline = time.time() + 10
    while not runner.calls and time.time() < deadline:
        time.sleep(0.05)
    assert runner.calls == [("train", 4)]
    q.close()
