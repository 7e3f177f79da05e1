"""The one-command demo: headless run (real Label Studio + backend, project, connection, trained
model, predictions, ranked queue), then a second run on the same data dir (restart, reuse) that a
headless chromium logs in to and screenshots a task with its pre-annotation."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.deploy.conftest import REPO, _required

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
ARGS = ["--ls-port", "0", "--backend-port", "0", "--tasks", "40", "--seed", "20", "--epochs", "20"]


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory) -> Path:
    from devtools.ls_process import find_label_studio

    try:
        find_label_studio()
    except FileNotFoundError:
        _required("Label Studio (.venv-ls)")
    return tmp_path_factory.mktemp("demo")


def _env() -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    for k in ("LLM_API_KEY", "REDIS_URL"):
        env.pop(k, None)  # the demo's local-model path: no network
    return env


def test_demo_headless(demo_dir):
    summary_path = demo_dir / "summary.json"
    r = subprocess.run([sys.executable, "-m", "devtools.demo", "--headless", "--data-dir", str(demo_dir / "d"),
                        "--summary", str(summary_path), *ARGS], cwd=REPO, env=_env(), capture_output=True,
                       text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    s = json.loads(summary_path.read_text())
    assert s["tasks"] == 40 and s["annotated"] == 20 and s["unlabeled"] == 20
    assert [m["state"] for m in s["ml_backends"]] in (["CO"], ["CONNECTED"])
    assert s["predicted"] == 20  # every unlabelled task carries a prediction of the serving version
    assert s["project_model_version"] == s["model_version"]  # so the queue follows the model ...
    assert s["next_task"] == s["least_confident"]  # ... least confident first
    assert s["example_regions"], "no pre-annotated entity to show a newcomer"
    assert s["predict_source"] == "model"
    assert f"/projects/{s['project']}" in r.stdout and "Label Studio :" in r.stdout
    state = json.loads((demo_dir / "d" / "demo.json").read_text())
    assert state["token"] not in r.stdout + r.stderr and state["password"] not in r.stdout  # headless: no secrets


def test_demo_in_a_browser(demo_dir):
    from tests.deploy.browser import Chromium, find_chromium, ls_session_cookie
    from devtools.ls_process import free_port

    exe = find_chromium()
    if not exe:
        _required("chromium (apt-get install -y chromium)")
    if not (demo_dir / "d" / "demo.json").exists():
        pytest.skip("needs test_demo_headless's data dir")
    summary_path = demo_dir / "summary2.json"
    proc = subprocess.Popen([sys.executable, "-m", "devtools.demo", "--data-dir", str(demo_dir / "d"),
                             "--summary", str(summary_path), *ARGS], cwd=REPO, env=_env(),
                            stdout=open(demo_dir / "demo2.log", "wb"), stderr=subprocess.STDOUT)
    browser = None
    try:
        end = time.monotonic() + 300
        while not summary_path.exists():
            assert proc.poll() is None, (demo_dir / "demo2.log").read_text()[-3000:]
            assert time.monotonic() < end, "the demo did not come up"
            time.sleep(0.5)
        time.sleep(0.2)
        s = json.loads(summary_path.read_text())
        log = (demo_dir / "demo2.log").read_text()
        assert "reusing project" in log  # restart on the same data dir keeps the project
        state = json.loads((demo_dir / "d" / "demo.json").read_text())
        assert state["password"] in log  # interactive run prints the login
        sid = ls_session_cookie(s["label_studio_url"], s["username"], state["password"])
        profile = demo_dir / "chromium-profile"
        profile.mkdir(exist_ok=True)
        browser = Chromium(exe, profile, free_port()).connect()
        browser.set_cookie(s["label_studio_url"], "sessionid", sid)
        browser.navigate(s["task_url"])
        assert s["example_regions"], "no pre-annotated entity to show"
        region = max(s["example_regions"], key=len)
        text = browser.wait_text(lambda t: region in t and any(lb in t for lb in ("PER", "ORG", "LOC", "DATE"))
                                 and "Submit" in t, 120)
        time.sleep(1.5)  # let the highlight paint
        png = browser.screenshot(demo_dir / "task.png")
        assert "Log in" not in text[:200]
        from PIL import Image

        img = Image.open(png)
        assert img.size[0] >= 1000 and png.stat().st_size > 20_000
        colors = img.convert("RGB").getcolors(maxcolors=1 << 20)
        assert len(colors) > 50  # a rendered page, not a blank or error screen
    finally:
        if browser:
            browser.close()
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    assert proc.returncode == 0
