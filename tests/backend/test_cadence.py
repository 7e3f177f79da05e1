"""Retrain cadence (issue 17.4): TRAIN_EVERY_N new annotations, TRAIN_MIN_INTERVAL_S between
training starts, Start Training always trains, and a trigger the interval holds back still trains."""
from __future__ import annotations

import threading
import time

from backend.cadence import Cadence
from backend.model_store import ModelStore
from backend.queue import InProcessQueue
from backend.settings import Settings


class Trainer:
    def __init__(self, seconds: float = 0.0):
        self.seconds = seconds
        self.starts: list[tuple[float, str]] = []
        self.lock = threading.Lock()

    def __call__(self, kind, project_id, reason, job_id):
        with self.lock:
            self.starts.append((time.time(), reason))
        time.sleep(self.seconds)
        return {"status": "trained"}


def _queue(tmp_path, trainer, every_n=1, interval=0.0):
    cadence = Cadence(ModelStore(tmp_path), every_n, interval)
    return InProcessQueue(tmp_path, trainer, cadence=cadence, limit_torch_threads=False)


def _idle(q, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if not any(r["status"] in ("queued", "running") for r in q.page(limit=500)["jobs"]):
            return
        time.sleep(0.02)
    raise AssertionError("queue never went idle")


def test_every_n_annotations_and_start_training_always_trains(tmp_path):
    trainer = Trainer()
    q = _queue(tmp_path, trainer, every_n=3)
    a = q.submit("train", 1, "ANNOTATION_CREATED")
    b = q.submit("train", 1, "ANNOTATION_UPDATED")
    assert a["status"] == b["status"] == "waiting" and a["id"] is None
    assert "2/3 new annotations" in b["detail"]
    c = q.submit("train", 1, "ANNOTATIONS_DELETED")
    assert c["id"] and q.wait(c["id"], 5)["status"] == "finished"
    assert q.submit("train", 1, "ANNOTATION_CREATED")["status"] == "waiting"  # the count started again
    forced = q.submit("train", 1, "START_TRAINING")
    assert forced["id"] and q.wait(forced["id"], 5)["status"] == "finished"
    assert [r for _, r in trainer.starts] == ["ANNOTATIONS_DELETED", "START_TRAINING"]
    q.close()


def test_trigger_inside_the_interval_is_deferred_not_lost(tmp_path):
    trainer = Trainer()
    q = _queue(tmp_path, trainer, interval=1.5)
    first = q.wait(q.submit("train", 1, "ANNOTATION_CREATED")["id"], 5)
    assert first["status"] == "finished"
    later = [q.submit("train", 1, "ANNOTATION_CREATED") for _ in range(20)]  # a burst, then silence
    assert len({r["id"] for r in later}) == 1 and later[0]["not_before"]
    done = q.wait(later[0]["id"], 10)
    assert done["status"] == "finished"
    assert done["started_at"] >= first["started_at"] + 1.5 - 0.01  # held back by the interval ...
    assert len(trainer.starts) == 2  # ... and run once, with nobody clicking again
    q.close()


def test_start_training_is_not_held_by_the_interval(tmp_path):
    trainer = Trainer()
    q = _queue(tmp_path, trainer, interval=60)
    q.wait(q.submit("train", 1, "ANNOTATION_CREATED")["id"], 5)
    deferred = q.submit("train", 1, "ANNOTATION_CREATED")
    assert deferred["not_before"] > time.time() + 50
    forced = q.submit("train", 1, "START_TRAINING")
    assert forced["coalesced"] and forced["id"] == deferred["id"]  # the waiting job runs now
    assert q.wait(forced["id"], 5)["status"] == "finished"
    q.close()


def test_auto_interval_is_twice_the_last_training_and_survives_a_restart(tmp_path):
    trainer = Trainer(seconds=0.4)
    q = _queue(tmp_path, trainer, interval="auto")
    first = q.wait(q.submit("train", 1, "ANNOTATION_CREATED")["id"], 5)
    q.close()
    state = Cadence(ModelStore(tmp_path)).state(1)
    assert 0.4 <= state["last_seconds"] < 1.5
    q2 = _queue(tmp_path, trainer, interval="auto")  # a restarted server reads the same state
    nxt = q2.submit("train", 1, "ANNOTATION_CREATED")
    assert abs(nxt["not_before"] - (first["started_at"] + 2 * state["last_seconds"])) < 0.1
    assert q2.wait(nxt["id"], 10)["started_at"] >= nxt["not_before"] - 0.01
    _idle(q2)
    q2.close()


def test_settings_read_and_check_the_cadence_variables():
    s = Settings.from_env({"TRAIN_EVERY_N": "5", "TRAIN_MIN_INTERVAL_S": "30"})
    assert (s.train_every_n, s.train_min_interval_s) == (5, 30.0)
    d = Settings.from_env({})
    assert (d.train_every_n, d.train_min_interval_s) == (1, "auto")
    import pytest

    with pytest.raises(ValueError, match="TRAIN_MIN_INTERVAL_S"):
        Settings.from_env({"TRAIN_MIN_INTERVAL_S": "soon"})
    with pytest.raises(ValueError, match="TRAIN_EVERY_N"):
        Cadence(ModelStore("/tmp/unused"), 0)


def test_webhook_says_waiting_and_jobs_over_http_are_paged(make_settings):
    """What Label Studio and an operator see: a webhook below TRAIN_EVERY_N answers 200 "waiting"
    (nothing queued), the N-th queues, Start Training always queues; GET /jobs pages with a total."""
    from backend.app import create_app
    from tests.conftest import NER_CONFIG

    app = create_app(make_settings(TRAIN_EVERY_N="2", TRAIN_MIN_INTERVAL_S="0"))
    client = app.test_client()
    try:
        for p in (1, 2, 3):
            assert client.post("/setup", json={"project": f"{p}.1", "schema": NER_CONFIG}).status_code == 200
        hook = {"action": "ANNOTATION_CREATED", "project": {"id": 1}, "annotation": {"id": 1}}
        first = client.post("/webhook", json=hook)
        assert first.status_code == 200 and first.json["status"] == "waiting" and first.json["job"] is None
        assert "1/2 new annotations" in first.json["detail"]
        second = client.post("/webhook", json=hook)
        assert second.status_code == 201 and second.json["status"] == "queued" and second.json["job"]
        for p in (2, 3):  # no Label Studio configured: these fail at once, which is fine here
            assert client.post("/train", json={"project": p}).status_code == 201
        queue = app.extensions["lal"]["queue"]
        end = time.monotonic() + 20
        while any(j["status"] in ("queued", "running") for j in client.get("/jobs").json["jobs"]):
            assert time.monotonic() < end
            time.sleep(0.05)
        page = client.get("/jobs?limit=2").json
        assert page["total"] == 3 and len(page["jobs"]) == 2 and page["next_offset"] == 2
        rest = client.get("/jobs?limit=2&offset=2").json
        assert len(rest["jobs"]) == 1 and rest["next_offset"] is None
        assert client.get("/jobs?project=2").json["total"] == 1
        assert client.get("/jobs?limit=lots").status_code == 400
        assert queue.page()["total"] == 3
    finally:
        app.extensions["lal"]["queue"].close()
