"""Label Studio unreachable, refusing the token (401) or failing (500) while the backend trains or
writes predictions: transient failures are retried with backoff, then the job fails with a clear
message (never the token); no annotation is lost and the next event recovers."""
from __future__ import annotations

import pytest

from tests.faults.conftest import seed_version
from tests.faults.harness import event, hausa

pytestmark = pytest.mark.slow


def test_label_studio_faults_then_recovery(fake_ls, ls_env, make_settings, tiny_model):
    from backend.app import create_app
    from backend.model_store import ModelStore

    settings = make_settings(**ls_env)
    v1 = seed_version(settings.model_dir, 1, tiny_model)
    data = hausa(30)
    ids = fake_ls.add_tasks(1, [t for t, _ in data] + [t for t, _ in hausa(5, skip=30)])
    for tid, (_, regions) in zip(ids, data):
        fake_ls.annotate(1, tid, regions)
    app = create_app(settings)
    client, queue = app.test_client(), app.extensions["lal"]["queue"]
    store = ModelStore(settings.model_dir)

    def train(action="ANNOTATION_CREATED") -> dict:
        r = client.post("/webhook", json=event(action, 1, 1, ids[0]))
        assert r.status_code == 201, r.get_json()
        return queue.wait(r.get_json()["job"], timeout=300)

    try:
        # 401: a wrong token is not retried and the error says which setting to fix
        fake_ls.fault = "401"
        before = len(fake_ls.calls)
        rec = train()
        assert rec["status"] == "failed"
        assert "401" in rec["error"] and "LABEL_STUDIO_API_KEY" in rec["error"]
        assert fake_ls.token not in rec["error"]
        assert len(fake_ls.calls) - before == 1, "an authentication failure must not be retried"

        # 500 on every call: retried with backoff, then a clear failure
        fake_ls.fault = "500"
        before = len(fake_ls.calls)
        rec = train()
        assert rec["status"] == "failed" and "answered 500 to listing tasks" in rec["error"]
        assert len(fake_ls.calls) - before >= 4, "a 500 must be retried"

        # unreachable (connection dropped without an answer)
        fake_ls.fault = "drop"
        rec = train()
        assert rec["status"] == "failed" and "unreachable" in rec["error"]
        assert store.serving_version(1) == v1  # nothing was published by the failed jobs

        # writing predictions fails after training: the model is kept, the job says what failed
        fake_ls.fault, fake_ls.fault_paths = "500", ("api/predictions",)
        rec = train()
        assert rec["status"] == "failed" and "writing a prediction" in rec["error"]
        assert store.serving_version(1) == "v2"

        # Label Studio is back: the next event trains on every annotation and writes predictions
        fake_ls.fault, fake_ls.fault_paths = None, ()
        rec = train("ANNOTATION_UPDATED")
        assert rec["status"] == "finished", rec
        assert rec["result"]["n_examples"] == 30 and rec["result"]["version"] == "v3"
        assert rec["result"]["written"]["tasks"] == 5
        assert fake_ls.model_version[1] == "v3"
        assert sorted(p["task"] for p in fake_ls.predictions[1] if p["model_version"] == "v3") == ids[30:]
    finally:
        queue.close()


def test_rescore_reads_pages_ahead_and_writes_each_unlabelled_task_once(fake_ls, ls_env, make_settings, tiny_model):
    """Re-scoring a pool larger than one listing page: every unlabelled task gets exactly one
    prediction of the new version, in one import request; annotated tasks get none; a page that
    fails transiently is re-read, not skipped."""
    from backend.ls_client import LIGHT_PAGE_SIZE, LabelStudioClient
    from backend.ml import MLBackend
    from backend.predictions import PredictionWriter
    from backend.label_config import parse_label_config
    from model.local import LocalModel
    from tests.conftest import NER_CONFIG

    texts = [t for t, _ in hausa(50)]
    n = 2 * LIGHT_PAGE_SIZE + 37
    ids = fake_ls.add_tasks(1, [texts[i % 50] for i in range(n)])
    annotated = set(ids[::97])
    for tid in annotated:
        fake_ls.annotate(1, tid, [])
    settings = make_settings(**ls_env)
    backend = MLBackend(settings)
    client = LabelStudioClient(fake_ls.url, fake_ls.token)

    calls = {"n": 0}
    real = client._request

    def flaky(method, path, **kw):  # the second listing page fails once with a 503
        if path == "api/tasks/" and kw["params"]["page"] == 2 and not calls["n"]:
            calls["n"] += 1
            from label_studio_sdk.core.api_error import ApiError
            raise ApiError(status_code=503, headers={}, body=None)
        return real(method, path, **kw)

    client._request = flaky
    model = LocalModel.load(tiny_model)
    out = PredictionWriter(client, backend.store, "least_confidence").write(  # the whole pool: one import
        1, parse_label_config(NER_CONFIG), "v9", model)
    written = [p for p in fake_ls.predictions[1] if p["model_version"] == "v9"]
    assert calls["n"] == 1 and out["tasks"] == n - len(annotated)
    assert sorted(p["task"] for p in written) == sorted(set(ids) - annotated)
    assert fake_ls.count("POST", "import/predictions") == 1
    assert fake_ls.model_version[1] == "v9"
    assert all(0.0 <= p["score"] <= 1.0 for p in written)
