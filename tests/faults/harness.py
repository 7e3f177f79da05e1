"""Scenario drivers shared by the fault tests and ``benchmarks.bench_faults``: Hausa tasks with gold
annotations, Label Studio-shaped webhook payloads, the webhook storm, waiting for the backend's
job queue to go idle, and a SIGKILL landing inside a model save. Everything talks HTTP to a running backend (``tests.conftest.BackendProcess``)
and a ``FakeLabelStudio``, so the same code measures and asserts.
"""
from __future__ import annotations

import hashlib
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from model.conll import read_conll
from model.tokenize import bio_to_spans, join_tokens
from tests.conftest import NER_CONFIG, REPO
from model.shared_data import SHARED

HAU_TRAIN = SHARED / "data" / "masakhaner2" / "hau" / "train.txt"
# one torch thread: the training thread shares the 2 test cores with the HTTP threads
FAST_TRAINING = {"NER_MAX_EPOCHS": "2", "LOG_LEVEL": "INFO", "OMP_NUM_THREADS": "1"}


def hausa(n: int, skip: int = 0) -> list[tuple[str, list[dict]]]:
    """``n`` Hausa sentences as ``(text, Label Studio result regions)`` from the gold CoNLL file."""
    out = []
    for toks, tags in read_conll(HAU_TRAIN)[skip:skip + n]:
        text, tk = join_tokens(toks)
        regions = [{"from_name": "label", "to_name": "text", "type": "labels",
                    "value": {"start": s.start, "end": s.end, "text": text[s.start:s.end], "labels": [s.label]}}
                   for s in bio_to_spans(tk, tags)]
        out.append((text, regions))
    return out


def event(action: str, project: int, annotation_id: int = 0, task_id: int = 0) -> dict:
    """What Label Studio 1.23 posts for an annotation event (trimmed to the fields that matter)."""
    return {"action": action,
            "annotation": {"id": annotation_id, "task": task_id, "project": project, "result": [],
                           "was_cancelled": False, "completed_by": 1},
            "task": {"id": task_id, "project": project},
            "project": {"id": project, "title": "faults", "label_config": NER_CONFIG}}


def setup(url: str, project: int, auth=None) -> str:
    r = requests.post(f"{url}/setup", json={"project": f"{project}.1700000000", "schema": NER_CONFIG},
                      auth=auth, timeout=30)
    r.raise_for_status()
    return r.json()["model_version"]


def jobs(url: str, project: int, auth=None) -> list[dict]:
    return requests.get(f"{url}/jobs", params={"project": project}, auth=auth, timeout=10).json()["jobs"]


def wait_idle(url: str, project: int, timeout: float = 300, auth=None) -> list[dict]:
    """Wait until no job of the project is queued or running; returns its jobs (newest first)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            js = jobs(url, project, auth)
            if js and not any(j["status"] in ("queued", "running") for j in js):
                return js
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise AssertionError(f"jobs of project {project} still active after {timeout:.0f}s: {jobs(url, project, auth)}")


def serving(url: str, project: int, auth=None) -> dict:
    body = requests.get(f"{url}/versions", params={"project": project}, auth=auth, timeout=10).json()
    return body["projects"].get(str(project), {"serving": {}, "versions": []})


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q / 100 * (len(xs) - 1))))] if xs else float("nan")


def storm(url: str, fake, project: int, task_ids: list[int], regions: list[list[dict]], n_events: int = 1000,
          threads: int = 20, url_prefix: str = "", auth=None) -> dict:
    """Annotate in the fake Label Studio and fire one webhook per annotation, ``threads`` at a time,
    while a monitor samples the job list. Returns latencies, statuses and the most jobs seen active."""
    lat: list[float] = []
    statuses: list[int] = []
    errors: list[str] = []
    max_active = [0]
    stop = threading.Event()
    seen = set()
    seen_lock = threading.Lock()

    def monitor():
        while not stop.is_set():
            try:
                js = jobs(url, project, auth)
                max_active[0] = max(max_active[0], sum(j["status"] in ("queued", "running") for j in js))
            except requests.RequestException:
                pass
            time.sleep(0.05)

    def one(i: int):
        k = i % len(task_ids)
        with seen_lock:
            action = "ANNOTATION_UPDATED" if k in seen else "ANNOTATION_CREATED"
            seen.add(k)
        ann = fake.annotate(project, task_ids[k], regions[k])
        t0 = time.perf_counter()
        try:
            r = requests.post(f"{url}{url_prefix}/webhook", json=event(action, project, ann, task_ids[k]), timeout=5)
            code = r.status_code
        except requests.RequestException as e:
            code = 0
            errors.append(type(e).__name__)
        return time.perf_counter() - t0, code

    mon = threading.Thread(target=monitor, daemon=True)
    mon.start()
    t0 = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        for dt, code in pool.map(one, range(n_events)):
            lat.append(dt)
            statuses.append(code)
    wall = time.perf_counter() - t0
    time.sleep(0.2)
    stop.set()
    mon.join()
    return {"sent": n_events, "wall_s": wall, "latencies": lat, "statuses": statuses, "errors": errors,
            "in_time": sum(1 for d, c in zip(lat, statuses) if d < 1.0 and 200 <= c < 300),
            "p50": pct(lat, 50), "p95": pct(lat, 95), "max": max(lat), "max_active": max_active[0],
            "mean": statistics.fmean(lat)}


SAVE_LOOP = """
import shutil, sys
from backend.model_store import ModelStore
store, src = ModelStore(sys.argv[1]), sys.argv[2]
print("ready", flush=True)
while True:
    store.save_version(1, lambda d: shutil.copytree(src, d, dirs_exist_ok=True) and None, {"event": "loop"})
"""


def tree_hash(d: Path) -> str:
    """Hash of every file's relative path and bytes under ``d``: equal trees, equal hashes."""
    h = hashlib.sha256()
    for p in sorted(x for x in d.rglob("*") if x.is_file()):
        h.update(str(p.relative_to(d)).encode() + p.read_bytes())
    return h.hexdigest()


def kill_during_save(root: Path, src: Path, rng: random.Random) -> bool:
    """Run a process that saves ``src`` as new versions of project 1 in a loop, SIGKILL it at a
    random moment; True when the kill landed inside a save (a ``.tmp-`` directory is left)."""
    proc = subprocess.Popen([sys.executable, "-c", SAVE_LOOP, str(root), str(src)], cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE)
    assert proc.stdout.readline().strip() == b"ready"
    time.sleep(rng.uniform(0.02, 0.4))
    proc.kill()
    proc.wait(10)
    from backend.model_store import ModelStore

    return any(p.name.startswith(".tmp-") for p in (ModelStore(root).project_dir(1) / "versions").iterdir())
