"""Replay what Label Studio 1.23.2 really sends (../shared/docs/label-studio-1.23-requests.jsonl)."""
from __future__ import annotations

import json

import pytest

from tests.conftest import shared_path


def _recorded() -> list[dict]:
    path = shared_path("docs", "label-studio-1.23-requests.jsonl")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


class RecordingQueue:
    """Stands in for the job queue: the protocol layer must enqueue, never train inline."""

    def __init__(self):
        self.submitted: list[tuple[str, int, str]] = []

    def submit(self, kind, project_id, reason=""):
        self.submitted.append((kind, project_id, reason))
        return {"id": f"job{len(self.submitted)}", "status": "queued", "coalesced": False}

    def get(self, job_id):
        return None

    def list(self, project_id=None, limit=50):
        return []

    def close(self):
        pass


@pytest.fixture
def replay(make_settings):
    from backend.app import create_app

    queue = RecordingQueue()
    app = create_app(make_settings(), queue=queue)
    return app.test_client(), queue


def _send(client, req):
    headers = {k: v for k, v in req["headers"].items() if k in ("Content-Type", "User-Agent")}
    if req["method"] == "GET":
        return client.get(req["path"], headers=headers)
    return client.post(req["path"], data=json.dumps(req["body"]), headers=headers)


def _connect_recorded_projects(client) -> None:
    """Label Studio calls /setup for a project when its model is connected (the recording holds
    that call for project 7 only; its webhooks also come from project 1)."""
    setup = next(r for r in _recorded() if r["path"] == "/setup")
    ids = {r["body"]["project"]["id"] for r in _recorded() if r["path"] == "/webhook"}
    for pid in sorted(ids):
        assert client.post("/setup", json={**setup["body"], "project": f"{pid}.1700000000"}).status_code == 200


def test_every_recorded_request_is_answered(replay):
    client, queue = replay
    _connect_recorded_projects(client)
    seen = set()
    for req in _recorded():
        resp = _send(client, req)
        seen.add((req["method"], req["path"], (req["body"] or {}).get("action")))
        assert resp.status_code < 300, (req["path"], resp.get_json())
        body = resp.get_json()
        if req["path"] == "/health":
            assert body["status"] == "UP"
            assert body["llm"]["enabled"] is False  # no LLM_API_KEY: the backend says the LLM is off
        elif req["path"] == "/setup":
            assert body == {"model_version": "untrained"}
        elif req["path"] == "/predict":
            # no model yet: an empty, valid list (LS stores nothing and asks again later) and why
            assert body["results"] == [] and body["source"] == "none"
            assert "no local model" in body["detail"]
        elif req["path"] == "/versions":
            assert body["versions"] == []
        elif req["path"] == "/webhook":
            action = req["body"]["action"]
            if action == "PROJECT_UPDATED":
                assert body["status"] == "ignored"
            else:
                assert body["status"] == "queued" and body["job"]
    assert ("POST", "/webhook", "START_TRAINING") in seen
    actions = [r for k, _, r in queue.submitted if k == "train"]
    assert {"ANNOTATION_CREATED", "ANNOTATION_UPDATED", "START_TRAINING"} <= set(actions)


def test_setup_stores_config_and_predict_uses_it(replay):
    client, _ = replay
    setup = next(r for r in _recorded() if r["path"] == "/setup")
    assert client.post("/setup", json=setup["body"]).status_code == 200
    # a /predict without label_config falls back to the config /setup stored for project 7
    resp = client.post("/predict", json={"project": "7.1", "tasks": [{"id": 1, "data": {"text": "Dave met Eve."}}]})
    assert resp.status_code == 200 and resp.get_json()["results"] == []


def test_webhook_answers_fast_and_never_trains_inline(replay):
    import time

    client, queue = replay
    _connect_recorded_projects(client)
    event = next(r for r in _recorded() if r["body"] and r["body"].get("action") == "ANNOTATION_CREATED")
    t0 = time.perf_counter()
    for _ in range(50):
        assert client.post("/webhook", json=event["body"]).status_code == 201
    per_call = (time.perf_counter() - t0) / 50
    assert per_call < 0.2, f"webhook took {per_call:.3f}s per call; Label Studio gives it 1 s"
    assert len(queue.submitted) == 50


def test_webhook_cannot_define_or_change_an_unconnected_project(replay):
    """Whoever holds the webhook secret could overwrite any project's label config; now only a
    project connected through /setup takes the config a webhook carries (PROJECT_UPDATED after an
    edit in Label Studio)."""
    from tests.conftest import NER_CONFIG, NEWS_CONFIG

    client, queue = replay
    app = client.application
    store = app.extensions["lal"]["backend"].store
    event = {"action": "ANNOTATION_CREATED", "project": {"id": 12, "label_config": NER_CONFIG}, "annotation": {"id": 1}}
    r = client.post("/webhook", json=event)
    assert r.status_code == 404 and "unknown to this backend" in r.get_json()["error"]
    assert store.project(12) == {} and queue.submitted == []
    # a project only seeded (no /setup) keeps its config too
    store.save_project(13, label_config=NER_CONFIG)
    r = client.post("/webhook", json={"action": "PROJECT_UPDATED", "project": {"id": 13, "label_config": NEWS_CONFIG}})
    assert r.status_code == 200 and store.project(13)["label_config"] == NER_CONFIG
    # connected through /setup: Label Studio's PROJECT_UPDATED after a config edit is taken
    assert client.post("/setup", json={"project": "13.1700000000", "schema": NER_CONFIG}).status_code == 200
    r = client.post("/webhook", json={"action": "PROJECT_UPDATED", "project": {"id": 13, "label_config": NEWS_CONFIG}})
    assert r.status_code == 200 and store.project(13)["label_config"] == NEWS_CONFIG
    # a bad config is refused whether or not it would be stored
    r = client.post("/webhook", json={"action": "PROJECT_UPDATED", "project": {"id": 14, "label_config": "<View"}})
    assert r.status_code == 400 and store.project(14) == {}
