"""Re-score and write 10,000 unlabelled tasks after a retrain, against the real Label Studio.

Measures what the backend does after each training (``PredictionWriter.write``): list the tasks,
predict them with the local model, score them with the query strategy, import the predictions in
bulk and set the project's model_version. Goal (active-learning issue): <= 30 s for 10,000 tasks
on 2 cores. Baseline in the same run: the same import with constant scores and empty results (the
Label Studio API's own share of the time).

    python -m benchmarks.bench_rescore --tasks 10000 --strategies least_confidence entropy bald
"""
from __future__ import annotations

import argparse
import json
import platform
import secrets
import tempfile
import time
from pathlib import Path

from tqdm import tqdm

from devtools.ls_process import LabelStudioProcess, free_port
from backend.settings import Settings
from model.shared_data import SHARED

NER_CONFIG = ('<View><Labels name="label" toName="text"><Label value="PER"/><Label value="ORG"/>'
              '<Label value="LOC"/><Label value="DATE"/></Labels><Text name="text" value="$text"/></View>')


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", type=int, default=10_000)
    ap.add_argument("--train", type=int, default=300, help="training sentences for the local model")
    ap.add_argument("--strategies", nargs="+", default=["least_confidence", "entropy", "mnlp"])
    ap.add_argument("--out", default="benchmarks/results/rescore.md")
    args = ap.parse_args(argv)

    import torch

    from backend.label_config import parse_label_config
    from backend.ls_client import LabelStudioClient
    from backend.ml import MLBackend
    from backend.predictions import PredictionWriter
    from model.conll import read_conll
    from model.local import LocalModel
    from model.tokenize import bio_to_spans, join_tokens
    from model.types import Example

    torch.set_num_threads(2)
    sents = read_conll(SHARED / "data/masakhaner2/hau/train.txt")
    train = []
    for toks, tags in sents[: args.train]:
        text, tk = join_tokens(toks)
        train.append(Example(text, bio_to_spans(tk, tags)))
    pool = [join_tokens(t)[0] for t, _ in sents[args.train:]]
    pool = (pool * (args.tasks // len(pool) + 1))[: args.tasks]
    spec = parse_label_config(NER_CONFIG)
    t0 = time.perf_counter()
    model = LocalModel(spec, ner_params={"max_epochs": 10}).fit(train)
    fit_s = time.perf_counter() - t0

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        ls = LabelStudioProcess(Path(tmp) / "ls", free_port(), secrets.token_hex(20)).start()
        try:
            client = LabelStudioClient(ls.url, ls.token, timeout=300)
            sdk = client._client
            pid = sdk.projects.create(title="rescore bench", label_config=NER_CONFIG).id
            for i in tqdm(range(0, len(pool), 1000), desc="import tasks"):
                sdk.projects.import_tasks(id=pid, request=[{"text": t} for t in pool[i:i + 1000]])
            backend = MLBackend(Settings.from_env({"MODEL_DIR": str(Path(tmp) / "var")}))
            t0 = time.perf_counter()
            full = client.iter_tasks(pid)
            full_list_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            tasks = client.unlabeled_tasks(pid)
            list_s = time.perf_counter() - t0
            assert len(tasks) == len(full) == args.tasks
            t0 = time.perf_counter()
            model.predict([t["data"]["text"] for t in tasks])
            predict_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            client.import_predictions(pid, [{"task": int(t["id"]), "result": [], "score": 0.5, "model_version": "base"}
                                            for t in tasks])
            base_s = time.perf_counter() - t0
            rows.append(("baseline: Label Studio imports 10,000 empty predictions", len(tasks), None, base_s, {}))
            for name in tqdm(args.strategies, desc="strategies"):
                t0 = time.perf_counter()  # the whole pool (RESCORE_CANDIDATES=0): one bulk import
                out = PredictionWriter(client, backend.store, name).write(pid, spec, f"v-{name}", model, tasks=None)
                total = time.perf_counter() - t0
                rows.append((name, out["tasks"], out.get("strategy"), total, out.get("phases", {})))
        finally:
            ls.stop()

    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "?")
    import os

    lines = ["# Re-scoring the Label Studio queue after a retrain", "",
             f"Command: `python -m benchmarks.bench_rescore --tasks {args.tasks} --strategies {' '.join(args.strategies)}`",
             f"Machine: {os.cpu_count()} cores ({cpu}), {platform.python_version()}, torch threads 2; load average "
             f"{os.getloadavg()[0]:.1f} at the end (other work on the machine).", "",
             f"Local model: NERTagger fitted on {args.train} Hausa sentences in {fit_s:.1f} s. Listing the "
             f"{args.tasks} unlabelled tasks: {list_s:.1f} s (id + text, filtered by Label Studio) vs "
             f"{full_list_s:.1f} s for the full listing with annotations and predictions; predicting them "
             f"alone: {predict_s:.1f} s. Goal: <= 30 s per "
             "re-score of 10,000 tasks (list + predict + score + import + set model_version).", "",
             "| run | tasks | strategy used | list + predict s | score + regions s | import + set version s | total s | tasks/s |",
             "|---|---:|---|---:|---:|---:|---:|---:|"]
    for name, n, used, secs, ph in rows:
        cols = [f"{ph[k]:.1f}" if k in ph else "-" for k in ("list_predict", "score", "write")]
        lines.append(f"| {name} | {n} | {used or '-'} | {' | '.join(cols)} | {secs:.1f} | {n / secs:.0f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    Path(args.out).write_text(text, encoding="utf-8")
    Path("benchmarks/out").mkdir(parents=True, exist_ok=True)
    Path("benchmarks/out/rescore.json").write_text(json.dumps(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
