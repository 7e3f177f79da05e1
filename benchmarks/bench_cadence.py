"""Retrain cadence benchmark: what TRAIN_EVERY_N / TRAIN_MIN_INTERVAL_S cost and save.

1. Measures one training job of the served model (``LocalModel`` with the backend's defaults:
   fit on n hau sentences with the pool's texts for the word classes, cached across fits as the
   backend caches them in MODEL_DIR, then predict the pool, as the job re-scores it) at several
   label counts n. A first fit learns the word classes (reported apart: once per project).
2. Replays a labelling session at a fixed annotation pace through the queue's rules (one running
   + one pending job, the cadence of ``backend/cadence.py``) with the measured job lengths, and
   reports per policy: trainings per 100 annotations, the share of wall time spent training, and
   the delay from an annotation to the first served model that includes it (p50 / p95).

Baseline in the same run: retrain on every event (``TRAIN_EVERY_N=1``, ``TRAIN_MIN_INTERVAL_S=0``,
the behaviour before the cadence existed). Writes ``benchmarks/out/cadence.json`` and
``benchmarks/results/cadence.md``.
"""
from __future__ import annotations

import argparse
import heapq
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks import save_results
from model.shared_data import MASAKHANER2

ROOT = Path(__file__).resolve().parents[1]
POLICIES = [(1, 0.0), (1, "auto"), (5, 0.0), (10, 0.0), (5, "auto"), (1, 60.0)]


def measure(lang: str, sizes: list[int], pool: int, seed: int) -> dict[int, dict]:
    from model.conll import read_conll
    from model.local import LocalModel
    from model.spec import NERControl, TaskSpec
    from model.tokenize import bio_to_spans, join_tokens
    from model.types import Example

    sents = read_conll(MASAKHANER2 / lang / "train.txt")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(sents))
    examples = []
    for i in order:
        text, toks = join_tokens(sents[i][0])
        examples.append(Example(text=text, spans=bio_to_spans(toks, sents[i][1]), task_id=int(i)))
    labels = sorted({s.label for e in examples for s in e.spans})
    spec = TaskSpec(ner=NERControl(from_name="label", to_name="text", value_key="text", labels=tuple(labels)),
                    choices=None)
    out = {}
    texts = [e.text for e in examples[max(sizes):max(sizes) + pool]]  # the project's unlabelled tasks
    cache = Path(tempfile.mkdtemp(prefix="bench-cadence-"))  # word classes cached as MODEL_DIR keeps them
    t0 = time.perf_counter()
    LocalModel(spec, seed=seed).fit(examples[:sizes[0]], unlabelled_texts=texts, cluster_dir=cache)
    out[0] = {"cold_fit_s": round(time.perf_counter() - t0, 2)}
    print(f"first fit, word classes learnt: {out[0]['cold_fit_s']:.1f} s", flush=True)
    for n in sizes:
        t0 = time.perf_counter()
        model = LocalModel(spec, seed=seed).fit(examples[:n], unlabelled_texts=texts, cluster_dir=cache)
        fit_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        model.predict(texts)
        out[n] = {"fit_s": round(fit_s, 2), "predict_s": round(time.perf_counter() - t1, 2),
                  "job_s": round(time.perf_counter() - t0, 2)}
        print(f"n={n}: fit {fit_s:.1f} s, predict {pool} tasks {out[n]['predict_s']:.1f} s", flush=True)
    return out


def job_seconds(measured: dict[int, dict], n: int) -> float:
    xs = sorted(k for k in measured if k)
    return float(np.interp(n, xs, [measured[x]["job_s"] for x in xs]))  # flat beyond the ends


def replay(measured: dict[int, dict], pace_s: float, annotations: int, every_n: int,
           interval: float | str) -> dict:
    """Event-driven replay of the queue + cadence rules for one session."""
    arrivals = [pace_s * (i + 1) for i in range(annotations)]
    events: list[tuple[float, int, str, int]] = [(t, 1, "annotation", i) for i, t in enumerate(arrivals)]
    heapq.heapify(events)
    since_last, last_started, last_seconds = 0, -1e18, 0.0
    running_until, pending_due, seq = None, None, 0
    served_upto = -1  # annotations included in the serving model: indices <= served_upto
    included_at: dict[int, float] = {}
    trainings, busy = 0, 0.0
    n_done = 0  # annotations that have arrived

    def start(t: float) -> None:
        nonlocal running_until, last_started, since_last, trainings, busy, seq, last_seconds
        js = job_seconds(measured, max(1, n_done))
        running_until, last_started, since_last = t + js, t, 0
        last_seconds = js
        trainings += 1
        busy += js
        seq += 1
        heapq.heappush(events, (t + js, 0, "end", n_done - 1))

    while events:
        t, _, kind, idx = heapq.heappop(events)
        if kind == "annotation":
            n_done = idx + 1
            since_last += 1
            if since_last < every_n:
                continue
            gap = 2.0 * last_seconds if interval == "auto" else float(interval)
            due = max(t, last_started + gap)
            if running_until is not None or due > t:
                if pending_due is None:
                    pending_due = max(due, running_until or 0)
                    heapq.heappush(events, (pending_due, 2, "due", -1))
                continue
            start(t)
        elif kind == "end":
            for i in range(served_upto + 1, idx + 1):
                included_at[i] = t
            served_upto = max(served_upto, idx)
            running_until = None
            if pending_due is not None and pending_due <= t:
                pending_due = None
                start(t)
        elif kind == "due" and pending_due is not None and running_until is None and t >= pending_due:
            pending_due = None
            start(t)
    delays = [included_at[i] - arrivals[i] for i in range(annotations) if i in included_at]
    session = max(included_at.values(), default=arrivals[-1])
    return {"trainings_per_100": round(100 * trainings / annotations, 1),
            "busy_share": round(busy / session, 3),
            "delay_p50_s": round(statistics.median(delays), 1) if delays else None,
            "delay_p95_s": round(float(np.percentile(delays, 95)), 1) if delays else None,
            "never_included": annotations - len(delays)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lang", default="hau")
    ap.add_argument("--sizes", default="50,200,500,1000", help="label counts whose training job is timed")
    ap.add_argument("--pool", type=int, default=2000, help="unlabelled tasks re-scored per job")
    ap.add_argument("--paces", default="10,30", help="seconds per annotation of the replayed session")
    ap.add_argument("--annotations", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=str(ROOT / "benchmarks/out/cadence.json"))
    ap.add_argument("--results", default=str(ROOT / "benchmarks/results/cadence.md"))
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(max(1, (os.cpu_count() or 2) - 1))  # as the server's job thread does
    sizes = [int(s) for s in args.sizes.split(",")]
    measured = measure(args.lang, sizes, args.pool, args.seed)
    rows = []
    for pace in [float(p) for p in args.paces.split(",")]:
        for every_n, interval in POLICIES:
            r = replay(measured, pace, args.annotations, every_n, interval)
            rows.append({"pace_s": pace, "every_n": every_n, "interval": interval, **r})
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}"
    md = ["# Retrain cadence (`benchmarks/bench_cadence.py`)", "",
          f"Machine: {machine}; Python {sys.version.split()[0]}. Served NER model (`LocalModel` defaults), "
          f"{args.lang} train sentences, pool of {args.pool} tasks re-scored per job.", "",
          "| labels | fit s | predict pool s | job s |", "|---|---|---|---|"]
    md += [f"| {n} | {m['fit_s']} | {m['predict_s']} | {m['job_s']} |" for n, m in measured.items() if n]
    md += ["", f"First fit of a project (learns the word classes of the pool, then cached): "
           f"{measured[0]['cold_fit_s']} s."]
    md += ["", f"Replayed session: {args.annotations} annotations at a fixed pace; baseline = every event "
           "(`TRAIN_EVERY_N=1`, `TRAIN_MIN_INTERVAL_S=0`).", "",
           "| s per annotation | TRAIN_EVERY_N | TRAIN_MIN_INTERVAL_S | trainings / 100 annotations | "
           "share of time training | annotation -> served model p50 / p95 s |", "|---|---|---|---|---|---|"]
    md += [f"| {r['pace_s']:g} | {r['every_n']} | {r['interval']} | {r['trainings_per_100']} | {r['busy_share']} | "
           f"{r['delay_p50_s']} / {r['delay_p95_s']} |" for r in rows]
    text = "\n".join(md) + "\n"
    print(text)
    save_results({"args": vars(args), "measured": measured, "rows": rows, "machine": machine}, args.json, text,
                 args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
