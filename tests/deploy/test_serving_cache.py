"""gunicorn (no preload, 2 workers) loads a project's model once per worker and again only when
the serving version changes: counted from the backend's own "loaded model" log lines."""
from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.conftest import NER_CONFIG

pytestmark = pytest.mark.slow


def _loads(log: str, project: int) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in re.findall(rf"project {project}: loaded model (v\d+)", log):
        out[v] = out.get(v, 0) + 1
    return out


def test_model_loaded_once_per_worker_and_reloaded_on_version_change(backend_process, tmp_path, monkeypatch):
    from tests.deploy.jobrunner import run_job

    model_dir = tmp_path / "var"
    monkeypatch.setenv("MODEL_DIR", str(model_dir))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert run_job("train", 5, "seed", "j1")["version"] == "v1"
    assert run_job("train", 5, "seed", "j2")["version"] == "v2"  # v2 serves
    backend = backend_process({"WORKERS": "2", "THREADS": "4"}, model_dir=model_dir)
    body = {"project": "5.1700000000", "label_config": NER_CONFIG,
            "tasks": [{"id": 1, "data": {"text": "Musa Ibrahim ya tafi Kano ranar Litinin ."}}]}

    def predict(_):
        r = requests.post(f"{backend.url}/predict", json=body, timeout=60)
        assert r.ok, r.text
        return r.json()["results"][0]["model_version"]

    def storm(n: int) -> set[str]:
        with ThreadPoolExecutor(8) as pool:  # concurrent, so both workers serve
            return set(pool.map(predict, range(n)))

    assert storm(60) == {"v2"}
    first = _loads(backend.log_path.read_text(), 5)
    assert set(first) == {"v2"} and 1 <= first["v2"] <= 2, first  # at most once per worker

    assert storm(60) == {"v2"}
    assert _loads(backend.log_path.read_text(), 5) == first  # no reload without a version change

    # per-project admin routes need a project connected through /setup, as Label Studio does
    assert requests.post(f"{backend.url}/setup", json={"project": "5.1700000000", "schema": NER_CONFIG}).ok
    assert requests.post(f"{backend.url}/versions/5/pin", json={"version": "v1"}).ok  # roll back
    assert storm(60) == {"v1"}
    after = _loads(backend.log_path.read_text(), 5)
    assert after["v2"] == first["v2"] and 1 <= after["v1"] <= 2, after
    assert storm(30) == {"v1"}
    assert _loads(backend.log_path.read_text(), 5) == after
