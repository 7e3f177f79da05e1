"""Crashes: SIGKILL of the backend in the middle of ``fit``, SIGKILL of a process in the middle
of ``ModelStore.save_version`` (many times, at random moments), and a full or read-only disk
during the save. After each: the previous version keeps serving, nothing partial is ever listed or
loaded, and the interrupted job is retried or its failure is recorded with the cause."""
from __future__ import annotations

import errno
import json
import os
import random
import signal
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import NER_CONFIG
from tests.faults.conftest import seed_version
from tests.faults.harness import hausa, kill_during_save, serving, setup, tree_hash, wait_idle


def _predict(url: str, project: int, text: str = "Musa Yaradua ya je Kano") -> dict:
    r = requests.post(f"{url}/predict", json={"project": f"{project}.1", "label_config": NER_CONFIG,
                                              "tasks": [{"id": 1, "data": {"text": text}}]}, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()


def _annotate_all(fake, project: int, n: int, skip: int = 0) -> list[int]:
    data = hausa(n, skip)
    ids = fake.add_tasks(project, [t for t, _ in data])
    for tid, (_, regions) in zip(ids, data):
        fake.annotate(project, tid, regions)
    return ids


@pytest.mark.slow
def test_sigkill_during_fit_keeps_old_version_and_retries(fake_ls, ls_env, backend_process, tiny_model, tmp_path):
    model_dir = tmp_path / "var"
    v1 = seed_version(model_dir, 1, tiny_model)
    _annotate_all(fake_ls, 1, 80)
    # the tagger for several epochs: the default CRF fits 80 sentences before the kill can land
    env = {**ls_env, "NER_MODEL": "tagger", "NER_MAX_EPOCHS": "30"}
    be = backend_process(env, model_dir=model_dir)
    setup(be.url, 1)
    lists_before = fake_ls.count("GET", "/api/tasks")
    job = requests.post(f"{be.url}/train", json={"project": 1}, timeout=10).json()["job"]
    end = time.monotonic() + 60
    while fake_ls.count("GET", "/api/tasks") == lists_before and time.monotonic() < end:
        time.sleep(0.05)
    time.sleep(1.0)  # annotations read: the job is inside LocalModel.fit now
    rec = requests.get(f"{be.url}/jobs/{job}", timeout=10).json()
    assert rec["status"] == "running"
    be.stop(signal.SIGKILL)

    store = model_dir / "projects" / "1"
    assert json.loads((store / "serving.json").read_text())["version"] == v1
    assert sorted(p.name for p in (store / "versions").iterdir() if not p.name.startswith(".")) == [v1]

    again = backend_process(env, model_dir=model_dir, port=be.port)
    first = _predict(again.url, 1)  # the old version answers at once after the restart
    assert first["results"] and first["results"][0]["model_version"] == v1
    old = requests.get(f"{again.url}/jobs/{job}", timeout=10).json()
    assert old["status"] == "failed" and "interrupted" in old["error"]
    done = wait_idle(again.url, 1, timeout=300)
    retry = next(j for j in done if j["reason"] == f"retry of {job}")
    assert retry["status"] == "finished" and retry["result"]["n_examples"] == 80
    now = serving(again.url, 1)
    assert now["serving"]["version"] == retry["result"]["version"] == "v2"
    assert _predict(again.url, 1)["results"][0]["model_version"] == "v2"


def test_sigkill_during_save_never_publishes_a_partial_model(tiny_model, tmp_path):
    from backend.model_store import ModelStore
    from model.local import LocalModel

    root = tmp_path / "var"
    seed_version(root, 1, tiny_model)
    want = tree_hash(tiny_model)
    rng = random.Random(7)
    mid_save = 0
    for _ in range(12):
        mid_save += kill_during_save(root, tiny_model, rng)
        store = ModelStore(root)
        vdir = store.project_dir(1) / "versions"
        listed = store.versions(1)
        for v in listed:  # every listed version is complete, byte for byte
            assert tree_hash(store.version_dir(1, v["version"]) / "model") == want, v["version"]
        serving_v = store.serving_version(1)
        assert serving_v in {v["version"] for v in listed}
        store.cleanup_partial()
        assert not [p for p in vdir.iterdir() if p.name.startswith(".tmp-")]
    assert mid_save >= 3, "the kills never landed inside a save; the test proved nothing"
    model = LocalModel.load(ModelStore(root).version_dir(1, ModelStore(root).serving_version(1)) / "model")
    assert len(model.predict(["Musa ya je Kano"])) == 1


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["ENOSPC", "EROFS"])
def test_full_or_read_only_disk_fails_the_job_clearly(fault, fake_ls, ls_env, make_settings, tiny_model, monkeypatch):
    from backend import model_store
    from backend.app import create_app

    settings = make_settings(**ls_env)
    v1 = seed_version(settings.model_dir, 1, tiny_model)
    _annotate_all(fake_ls, 1, 20)
    app = create_app(settings)
    client = app.test_client()
    queue = app.extensions["lal"]["queue"]
    code = getattr(errno, fault)
    if fault == "ENOSPC":  # the model files fill the disk half-way through
        from model.local import LocalModel

        def save(self, directory):
            Path(directory).mkdir(parents=True, exist_ok=True)
            (Path(directory) / "partial.bin").write_bytes(b"\0" * 4096)
            raise OSError(code, os.strerror(code))

        monkeypatch.setattr(LocalModel, "save", save)
    else:  # the version directory cannot be renamed into place
        real = os.rename

        def rename(src, dst, *a, **k):
            if ".tmp-" in str(src):
                raise OSError(code, os.strerror(code))
            return real(src, dst, *a, **k)

        monkeypatch.setattr(model_store.os, "rename", rename)
    try:
        job = client.post("/train", json={"project": 1}).get_json()["job"]
        rec = queue.wait(job, timeout=240)
        assert rec["status"] == "failed"
        assert os.strerror(code) in rec["error"] and "previous version keeps serving" in rec["error"]
        assert client.get(f"/jobs/{job}").get_json()["error"] == rec["error"]
        assert model_store.ModelStore(settings.model_dir).serving_version(1) == v1
        vdir = settings.model_dir / "projects" / "1" / "versions"
        assert sorted(p.name for p in vdir.iterdir()) == [v1]  # no leftovers, nothing new listed
        body = client.post("/predict", json={"project": "1.1", "label_config": NER_CONFIG,
                                             "tasks": [{"id": 1, "data": {"text": "Musa ya je Kano"}}]}).get_json()
        assert body["results"][0]["model_version"] == v1
    finally:
        queue.close()
