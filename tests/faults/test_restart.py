"""Restart under load: a client keeps asking for predictions (retrying connection errors, as a
Label Studio user pressing Retrieve Predictions would) while the backend is stopped and started
again on the same port and MODEL_DIR. Answers resume, no request ever gets a 5xx, and the version
served is the same before and after."""
from __future__ import annotations

import signal
import threading
import time

import pytest
import requests

from tests.conftest import NER_CONFIG
from tests.faults.conftest import seed_version


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_predictions_keep_flowing_across_a_restart(sig, backend_process, tiny_model, tmp_path):
    model_dir = tmp_path / "var"
    v1 = seed_version(model_dir, 1, tiny_model)
    be = backend_process({"LOG_LEVEL": "WARNING"}, model_dir=model_dir)
    seen: list[tuple[float, str]] = []  # (time, "v1" | "conn" | "http-<status>")
    stop = threading.Event()

    def client():
        body = {"project": "1.1", "label_config": NER_CONFIG, "tasks": [{"id": 1, "data": {"text": "Musa ya je Kano"}}]}
        while not stop.is_set():
            try:
                r = requests.post(f"{be.url}/predict", json=body, timeout=10)
                seen.append((time.monotonic(), r.json()["results"][0]["model_version"] if r.ok else f"http-{r.status_code}"))
            except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as e:
                # refused, reset, cut off mid-body by the kill, or parked in the backlog of the
                # stopping server: retry, like a user would
                seen.append((time.monotonic(), "timeout" if isinstance(e, requests.Timeout) else "conn"))
                time.sleep(0.05)

    body = {"project": "1.1", "label_config": NER_CONFIG, "tasks": [{"id": 1, "data": {"text": "Kano"}}]}
    assert requests.post(f"{be.url}/predict", json=body, timeout=60).ok  # model loaded
    th = threading.Thread(target=client, daemon=True)
    th.start()
    end = time.monotonic() + 30
    while len(seen) < 5 and time.monotonic() < end:
        time.sleep(0.1)
    t_stop = time.monotonic()
    be.stop(sig)
    again = backend_process({"LOG_LEVEL": "WARNING"}, model_dir=model_dir, port=be.port)
    t_up = time.monotonic()
    end = time.monotonic() + 45
    while len([v for t, v in seen if t > t_up and v == v1]) < 5 and time.monotonic() < end:
        time.sleep(0.1)
    stop.set()
    th.join(15)
    before = [v for t, v in seen if t < t_stop]
    after = [v for t, v in seen if t > t_up and v not in ("conn", "timeout")]
    assert before and set(before) == {v1}
    assert after and set(after) == {v1}, "answers did not resume with the same version"
    assert not [v for _, v in seen if v.startswith("http-")], "a request got an HTTP error instead of an answer"
    assert requests.get(f"{again.url}/versions", params={"project": 1}).json()["projects"]["1"]["serving"]["version"] == v1
