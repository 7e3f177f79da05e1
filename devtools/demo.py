"""One-command demo: ``bash scripts/demo.sh`` (= ``python -m devtools.demo``).

Starts a real Label Studio 1.23.2 (its own venv, ``.venv-ls``) and this backend on 127.0.0.1, with
all state under ``./var/demo``; creates a Hausa NER project from ``../shared/data/masakhaner2/hau``
(or the hand-written ``devtools/demo_sample.conll`` when that folder is absent), connects the
backend, annotates a few seed tasks with their gold labels so the local model trains, switches the
project to uncertainty sampling, and prints the URL and login. A newcomer then opens a task and
sees pre-annotations (local model; the LLM too when ``LLM_API_KEY`` is set) and the ranked queue.

Running it again on the same ``--data-dir`` restarts both servers (seconds) and reuses the project.
``--headless`` checks what a newcomer would see, prints a summary and exits (used by the tests).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from devtools.ls_process import REPO, LabelStudioProcess, free_port
from model.shared_data import MASAKHANER2

log = logging.getLogger("devtools.demo")
TITLE = "Hausa NER (demo)"
NER_CONFIG = ('<View><Labels name="label" toName="text"><Label value="PER" background="#ffa39e"/>'
              '<Label value="ORG" background="#d3adf7"/><Label value="LOC" background="#91d5ff"/>'
              '<Label value="DATE" background="#b7eb8f"/></Labels><Text name="text" value="$text"/></View>')
SHARED_NER = MASAKHANER2 / "hau"
SAMPLE = Path(__file__).with_name("demo_sample.conll")


def load_sentences(limit: int) -> tuple[list[dict], list[list], str]:
    """Tasks ``{"text"}`` with gold spans, from MasakhaNER 2.0 Hausa (dev split) or the sample."""
    from model.conll import read_conll
    from model.tokenize import bio_to_spans, join_tokens

    source = SHARED_NER / "dev.txt" if (SHARED_NER / "dev.txt").exists() else SAMPLE
    tasks, gold = [], []
    for toks, tags in read_conll(source)[:limit]:
        text, tk = join_tokens(toks)
        tasks.append({"text": text})
        gold.append(bio_to_spans(tk, tags))
    return tasks, gold, str(source)


def _result(text: str, spans) -> list[dict]:
    return [{"from_name": "label", "to_name": "text", "type": "labels",
             "value": {"start": s.start, "end": s.end, "text": text[s.start:s.end], "labels": [s.label]}}
            for s in spans]


class Demo:
    def __init__(self, data_dir: Path, ls_port: int, backend_port: int, n_tasks: int, n_seed: int,
                 epochs: int):
        self.data_dir = data_dir.resolve()
        self.n_tasks, self.n_seed, self.epochs = n_tasks, n_seed, epochs
        self.state_path = self.data_dir / "demo.json"
        state = json.loads(self.state_path.read_text()) if self.state_path.exists() else {}
        # LS creates the user and token on the first start of a data dir only: keep them
        state.setdefault("token", secrets.token_hex(20))
        state.setdefault("password", secrets.token_urlsafe(9))
        self.state = state
        self.ls = LabelStudioProcess(self.data_dir / "label-studio", ls_port, state["token"],
                                     password=state["password"])
        self.backend_port = backend_port
        self.backend: subprocess.Popen | None = None

    @property
    def backend_url(self) -> str:
        return f"http://127.0.0.1:{self.backend_port}"

    def _save_state(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.state_path.write_text(json.dumps(self.state, indent=1))
        self.state_path.chmod(0o600)  # holds the demo login

    # -- processes -----------------------------------------------------------------------------
    def start(self) -> None:
        self._save_state()
        print(f"starting Label Studio on {self.ls.url} (first start of a data dir takes ~30-60 s) ...", flush=True)
        self.ls.start()
        env = {**os.environ, "MODEL_DIR": str(self.data_dir / "model"), "PORT": str(self.backend_port),
               "HOST": "127.0.0.1", "LABEL_STUDIO_URL": self.ls.url, "LABEL_STUDIO_API_KEY": self.ls.token,
               "NER_MAX_EPOCHS": str(self.epochs), "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
        env.pop("REDIS_URL", None)  # the demo runs jobs in the server: nothing else to start
        print(f"starting the backend on {self.backend_url} ...", flush=True)
        logf = open(self.data_dir / "backend.log", "ab")
        self.backend = subprocess.Popen([sys.executable, "-m", "backend", "serve"], cwd=REPO, env=env,
                                        stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
        end = time.monotonic() + 120
        while time.monotonic() < end:
            if self.backend.poll() is not None:
                raise RuntimeError(f"the backend exited; see {self.data_dir / 'backend.log'}")
            try:
                if requests.get(self.backend_url + "/health", timeout=2).ok:
                    return
            except requests.RequestException:
                time.sleep(0.5)
        raise TimeoutError(f"the backend did not start; see {self.data_dir / 'backend.log'}")

    def stop(self) -> None:
        if self.backend and self.backend.poll() is None:
            os.killpg(self.backend.pid, signal.SIGTERM)
            try:
                self.backend.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.backend.pid, signal.SIGKILL)
        self.ls.stop()

    # -- project -------------------------------------------------------------------------------
    def client(self):
        from label_studio_sdk.client import LabelStudio

        return LabelStudio(base_url=self.ls.url, api_key=self.ls.token, timeout=120)

    def setup_project(self) -> dict:
        ls = self.client()
        existing = [p for p in ls.projects.list() if p.title == TITLE]
        if existing:
            project = existing[0].id
            print(f"reusing project {project} ({TITLE})", flush=True)
        else:
            tasks, gold, source = load_sentences(self.n_tasks)
            project = ls.projects.create(title=TITLE, label_config=NER_CONFIG,
                                         description=f"{len(tasks)} sentences from {Path(source).name}").id
            ls.projects.import_tasks(id=project, request=tasks)
            print(f"created project {project}: {len(tasks)} Hausa sentences from {source}", flush=True)
            self.state["gold"] = {t["text"]: [[s.start, s.end, s.label] for s in g] for t, g in zip(tasks, gold)}
        # connect (or re-point) the backend: Label Studio then calls /health, /setup, registers /webhook
        mls = [m for m in ls.ml.list(project=project)]
        for m in mls:
            if m.url != self.backend_url:
                ls.ml.delete(id=m.id)
        if not [m for m in mls if m.url == self.backend_url]:
            ls.ml.create(url=self.backend_url, project=project, title="LLM active learning", is_interactive=True)
        self.state["project"] = project
        self._save_state()
        return {"project": project}

    def annotate_seeds(self, project: int) -> int:
        """Gold annotations on the first seed tasks (as a human would): each one fires a webhook."""
        from model.types import Span

        ls = self.client()
        tasks = [t.model_dump() for t in ls.tasks.list(project=project, fields="all", page_size=500)]
        done = sum(1 for t in tasks if t["annotations"])
        gold = self.state.get("gold") or {}
        todo = [t for t in tasks if not t["annotations"]][:max(0, self.n_seed - done)]
        for t in todo:
            spans = [Span(s, e, label) for s, e, label in gold.get(t["data"]["text"], [])]
            ls.annotations.create(id=t["id"], result=_result(t["data"]["text"], spans))
        if todo:
            print(f"annotated {len(todo)} seed task(s) with gold labels: training starts", flush=True)
        return done + len(todo)

    def wait_trained(self, project: int, timeout: float) -> str:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            jobs = requests.get(f"{self.backend_url}/jobs", params={"project": project}, timeout=10).json()["jobs"]
            failed = [j for j in jobs if j["status"] == "failed"]
            if failed:
                raise RuntimeError(f"training failed: {failed[0].get('error')}")
            v = requests.get(f"{self.backend_url}/versions", params={"project": project}, timeout=10).json()
            version = v["projects"].get(str(project), {}).get("serving", {}).get("version")
            if version and not any(j["status"] in ("queued", "running") for j in jobs):
                return version
            time.sleep(1.0)
        raise TimeoutError(f"no trained model after {timeout:.0f}s; see {self.data_dir / 'backend.log'}")

    def check(self, project: int, version: str) -> dict:
        """What a newcomer sees: predictions of the serving version on unlabelled tasks, and the
        next task of the uncertainty-ranked queue (the least confident)."""
        ls = self.client()
        ls.projects.update(id=project, sampling="Uncertainty sampling")
        tasks = [t.model_dump() for t in ls.tasks.list(project=project, fields="all", page_size=500)]
        unlabeled = [t for t in tasks if not t["annotations"]]
        scored = {t["id"]: min(p["score"] for p in t["predictions"] if p["model_version"] == version)
                  for t in unlabeled if any(p["model_version"] == version for p in t["predictions"])}
        headers = {"Authorization": f"Token {self.ls.token}"}
        nxt = requests.get(f"{self.ls.url}/api/projects/{project}/next", headers=headers, timeout=60).json()
        with_regions = [t for t in unlabeled for p in t["predictions"] if p["model_version"] == version and p["result"]]
        shown = with_regions[0] if with_regions else (unlabeled[0] if unlabeled else tasks[0])
        health = requests.get(self.backend_url + "/health", timeout=5).json()
        ml = [m.model_dump() for m in ls.ml.list(project=project)]
        return {
            "label_studio_url": self.ls.url, "username": self.ls.username, "backend_url": self.backend_url,
            "project": project, "model_version": version, "project_model_version": ls.projects.get(id=project).model_version,
            "tasks": len(tasks), "annotated": len(tasks) - len(unlabeled), "unlabeled": len(unlabeled),
            "predicted": len(scored), "next_task": nxt.get("id"),
            "least_confident": min(scored, key=scored.get) if scored else None,
            "ml_backends": [{"url": m["url"], "state": m["state"]} for m in ml],
            "predict_source": health["predict_source"],
            "example_task": shown["id"],
            "example_regions": [r["value"]["text"] for p in shown["predictions"] if p["model_version"] == version
                                for r in p["result"]],
            "task_url": f"{self.ls.url}/projects/{project}/data?tab=0&task={shown['id']}",
        }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m devtools.demo", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", type=Path, default=REPO / "var" / "demo",
                   help="all demo state: Label Studio's database, models, logs (default ./var/demo)")
    p.add_argument("--ls-port", type=int, default=8080, help="Label Studio port (0 = any free port)")
    p.add_argument("--backend-port", type=int, default=9090, help="backend port (0 = any free port)")
    p.add_argument("--tasks", type=int, default=60, help="sentences to import (first run)")
    p.add_argument("--seed", type=int, default=20, help="tasks annotated with gold labels to train the first model")
    p.add_argument("--epochs", type=int, default=20, help="NER_MAX_EPOCHS of the local tagger")
    p.add_argument("--timeout", type=float, default=600, help="seconds to wait for the first model")
    p.add_argument("--headless", action="store_true", help="check, print the summary and exit (tests, CI)")
    p.add_argument("--summary", type=Path, help="also write the summary as JSON to this file")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    demo = Demo(args.data_dir, args.ls_port or free_port(), args.backend_port or free_port(), args.tasks,
                args.seed, args.epochs)
    stop = {"flag": False}

    def _stop(*_):
        stop["flag"] = True

    signal.signal(signal.SIGTERM, _stop)
    try:
        demo.start()
        project = demo.setup_project()["project"]
        demo.annotate_seeds(project)
        version = demo.wait_trained(project, args.timeout)
        summary = demo.check(project, version)
        text = json.dumps(summary, indent=1, ensure_ascii=False)
        if args.summary:
            args.summary.write_text(text)
        print(text)
        ok = summary["predicted"] > 0 and summary["next_task"] is not None and summary["ml_backends"]
        print("\n" + "=" * 72)
        print(f" Label Studio : {summary['label_studio_url']}")
        password = demo.state["password"] if not args.headless else f'see "password" in {demo.state_path}'
        print(f" login        : {summary['username']}  /  {password}")
        print(f" project      : {summary['label_studio_url']}/projects/{project}  (model {version}, "
              f"{summary['predicted']} tasks pre-annotated, queue ranked least-confident first)")
        print(f" open a task  : {summary['task_url']}")
        print(f" backend      : {summary['backend_url']}  (python -m backend --url {summary['backend_url']} jobs)")
        print("=" * 72, flush=True)
        if not summary["example_regions"]:
            print("note: the first model found no entity in the unlabelled tasks yet; annotate a few more "
                  "(or set LLM_API_KEY for LLM pre-annotations)", flush=True)
        if not ok:
            print("demo check FAILED: no predictions or no queue", file=sys.stderr)
            return 1
        if args.headless:
            return 0
        print("Annotate in the browser: each submission retrains in the background. Ctrl-C stops both servers.",
              flush=True)
        while not stop["flag"]:
            time.sleep(0.5)
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        demo.stop()


if __name__ == "__main__":
    sys.exit(main())
