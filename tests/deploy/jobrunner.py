"""A small but real job for the RQ tests and the worker benchmark (``LAL_JOB_RUNNER=
tests.deploy.jobrunner:run_job``): it trains the project's ``LocalModel`` on the bundled Hausa sample
under the same per-project ``train`` lock as ``MLBackend.fit`` and publishes it with
``ModelStore.save_version``, or re-scores with the serving model, without needing Label Studio.

Every job appends ``{"job", "project", "kind", "pid", "start"|"end", "version"}`` lines to
``MODEL_DIR/intervals.jsonl`` so tests can check that one project is never trained twice at once.
``LAL_TEST_SAVE_SLEEP`` pauses inside the save (after the artefacts, before ``meta.json``): a kill
there is a kill in the middle of writing a model.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

from backend.model_store import ModelStore
from model.conll import read_conll
from model.local import LocalModel
from model.spec import NERControl, TaskSpec
from model.tokenize import bio_to_spans, join_tokens
from model.types import Example

SAMPLE = Path(__file__).resolve().parents[2] / "devtools" / "demo_sample.conll"
SPEC = TaskSpec(ner=NERControl(from_name="label", to_name="text", value_key="text",
                               labels=("PER", "ORG", "LOC", "DATE")), choices=None)


def _examples(n: int) -> list[Example]:
    out = []
    for i, (toks, tags) in enumerate(read_conll(SAMPLE)[:n]):
        text, tk = join_tokens(toks)
        out.append(Example(text=text, spans=bio_to_spans(tk, tags), choices=[], task_id=i + 1))
    return out


def _record(model_dir: Path, **fields) -> None:
    with open(model_dir / "intervals.jsonl", "a", encoding="utf-8") as fh:
        fh.write(json.dumps({**fields, "pid": os.getpid(), "t": time.time()}) + "\n")


def run_job(kind: str, project_id: int, reason: str = "", job_id: str | None = None) -> dict:
    model_dir = Path(os.environ["MODEL_DIR"])
    store = ModelStore(model_dir)
    n = int(os.environ.get("LAL_TEST_EXAMPLES", "12"))
    if kind == "rescore":
        version = store.serving_version(project_id)
        model = LocalModel.load(store.version_dir(project_id, version) / "model")
        scores = [p.score for p in model.predict([e.text for e in _examples(32)])]
        return {"status": "done", "version": version, "written": len(scores)}
    with store.lock(project_id, "train"):
        _record(model_dir, event="start", job=job_id, project=project_id, kind=kind)
        model = LocalModel(SPEC, ner_params={"max_epochs": int(os.environ.get("LAL_TEST_EPOCHS", "2"))})
        model.fit(_examples(n))
        pause = float(os.environ.get("LAL_TEST_SAVE_SLEEP", "0"))

        def write(d: Path) -> dict:
            model.save(d)
            time.sleep(pause)
            return {}

        version = store.save_version(project_id, write, {"event": reason, "job": job_id, "n_examples": n})
        _record(model_dir, event="end", job=job_id, project=project_id, kind=kind, version=version)
    return {"status": "trained", "version": version, "n_examples": n}
