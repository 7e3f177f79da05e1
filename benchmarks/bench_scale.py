"""Label Studio at scale: N NER tasks on Label Studio + PostgreSQL, annotated at a human pace
while the backend retrains from Label Studio's webhooks.

What it does, all real: a PostgreSQL cluster (``devtools.ls_process.PostgresCluster``), Label
Studio 1.23.2 on it, the backend as users run it (gunicorn, ``python -m backend serve``, connected
in Label Studio's model settings so Label Studio sends the webhooks), N tasks built from the
MasakhaNER train texts of several languages (repeated with a ``(k)`` suffix past their number),
then ``--annotations`` annotations with the gold labels, each on the task Label Studio's
uncertainty queue serves next (``/api/projects/<id>/next``), ``--burst`` at a time ``--pace-s``
apart with ``--pause-s`` between bursts.

Reported per run: the import time; per retrain the fit, re-score and prune seconds, candidates
scored and predictions written and deleted; annotation -> updated queue (the first moment the
project's model_version names a version trained on that annotation) p50/p95; predictions in Label
Studio after 50/100/200 annotations; Label Studio API p95 of the task list (the Data Manager's
first page) and of next-task, idle (before the backend is connected: the baseline in the same run)
and while the backend trains and writes; HTTP 5xx counts from Label Studio and the backend.

    python -m benchmarks.bench_scale --tasks 10000            # ~20 min on 2 cores
    python -m benchmarks.bench_scale --tasks 100000 --out benchmarks/results/scale_100k.md

Not in CI (minutes of wall time, a PostgreSQL cluster). Needs ``.venv-ls`` and PostgreSQL
(``apt-get install postgresql``).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

from devtools.ls_process import LabelStudioProcess, PostgresCluster, free_port
from model.shared_data import SHARED

REPO = Path(__file__).resolve().parents[1]
LANGS = ("hau", "yor", "swa", "ibo", "kin", "lug", "luo", "pcm", "wol", "zul")
NER_CONFIG = ('<View><Labels name="label" toName="text"><Label value="PER"/><Label value="ORG"/>'
              '<Label value="LOC"/><Label value="DATE"/></Labels><Text name="text" value="$text"/></View>')


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q / 100 * (len(xs) - 1))))] if xs else float("nan")


def corpus(n: int) -> tuple[list[str], dict[str, list[dict]]]:
    """``n`` task texts from the MasakhaNER train sets (round robin over languages, repeated with a
    suffix past their number) and each distinct text's gold regions."""
    from model.conll import read_conll
    from model.tokenize import bio_to_spans, join_tokens

    per_lang = []
    for lang in LANGS:
        path = SHARED / "data" / "masakhaner2" / lang / "train.txt"
        if path.exists():
            per_lang.append(read_conll(path))
    if not per_lang:
        raise SystemExit(f"no MasakhaNER data under {SHARED}/data/masakhaner2")
    base, gold = [], {}
    for i in range(max(len(s) for s in per_lang)):
        for sents in per_lang:
            if i < len(sents):
                toks, tags = sents[i]
                text, tk = join_tokens(toks)
                if text not in gold:
                    base.append(text)
                    gold[text] = [{"from_name": "label", "to_name": "text", "type": "labels",
                                   "value": {"start": s.start, "end": s.end, "text": text[s.start:s.end],
                                             "labels": [s.label]}}
                                  for s in bio_to_spans(tk, tags) if s.label in ("PER", "ORG", "LOC", "DATE")]
    texts = [base[i % len(base)] + ("" if i < len(base) else f" ({i // len(base)})") for i in range(n)]
    return texts, gold


class Probe(threading.Thread):
    """Times Label Studio's task list and next-task, and the backend's /health, every ``every`` s."""

    def __init__(self, ls_url: str, token: str, pid: int, backend_url: str | None, every: float = 2.0):
        super().__init__(daemon=True)
        self.s = requests.Session()
        self.s.headers["Authorization"] = f"Token {token}"
        self.ls_url, self.pid, self.backend_url, self.every = ls_url, pid, backend_url, every
        self.lat: dict[str, list[float]] = {"list": [], "next": []}
        self.status5xx = {"ls": 0, "backend": 0}
        self.errors: list[str] = []
        self.stop = threading.Event()

    def _time(self, name: str, url: str, params=None) -> None:
        t0 = time.perf_counter()
        try:
            r = self.s.get(url, params=params, timeout=120)
            self.lat[name].append(time.perf_counter() - t0)
            if r.status_code >= 500:
                self.status5xx["ls"] += 1
                self.errors.append(f"{name} {r.status_code}")
        except requests.RequestException as e:
            self.errors.append(f"{name} {type(e).__name__}")

    def run(self) -> None:
        while not self.stop.wait(self.every):
            self._time("list", f"{self.ls_url}/api/tasks/", {"project": self.pid, "page": 1, "page_size": 30})
            self._time("next", f"{self.ls_url}/api/projects/{self.pid}/next")
            if self.backend_url:
                try:
                    if requests.get(f"{self.backend_url}/health", timeout=30).status_code >= 500:
                        self.status5xx["backend"] += 1
                except requests.RequestException as e:
                    self.errors.append(f"backend {type(e).__name__}")


class VersionWatch(threading.Thread):
    """When the project's model_version changes in Label Studio (= the queue was re-written)."""

    def __init__(self, ls_url: str, token: str, pid: int):
        super().__init__(daemon=True)
        self.s = requests.Session()
        self.s.headers["Authorization"] = f"Token {token}"
        self.url = f"{ls_url}/api/projects/{pid}/"
        self.changes: list[tuple[float, str]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        last = None
        while not self.stop.wait(0.5):
            try:
                v = self.s.get(self.url, timeout=60).json().get("model_version")
            except (requests.RequestException, ValueError):
                continue
            if v and v != last:
                self.changes.append((time.time(), v))
                last = v


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", type=int, default=10_000)
    ap.add_argument("--annotations", type=int, default=200)
    ap.add_argument("--burst", type=int, default=20, help="annotations per burst")
    ap.add_argument("--pace-s", type=float, default=2.0, help="seconds between annotations in a burst")
    ap.add_argument("--pause-s", type=float, default=20.0, help="seconds between bursts")
    ap.add_argument("--db", choices=("postgresql", "sqlite"), default="postgresql")
    ap.add_argument("--env", nargs="*", default=[], help="extra backend settings, KEY=VALUE")
    ap.add_argument("--out", default="benchmarks/results/scale.md")
    args = ap.parse_args(argv)

    texts, gold = corpus(args.tasks)
    tmp = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    pg = PostgresCluster().start() if args.db == "postgresql" else None
    ls = LabelStudioProcess(tmp / "ls", free_port(), secrets.token_hex(20), db=pg)
    backend = None
    t_start = time.time()
    try:
        ls.start(timeout=900)
        from label_studio_sdk.client import LabelStudio

        sdk = LabelStudio(base_url=ls.url, api_key=ls.token, timeout=600)
        pid = sdk.projects.create(title=f"scale {args.tasks}", label_config=NER_CONFIG).id
        t0 = time.perf_counter()
        for i in range(0, len(texts), 5000):
            sdk.projects.import_tasks(id=pid, request=[{"text": t} for t in texts[i:i + 5000]])
        import_s = time.perf_counter() - t0
        print(f"imported {len(texts)} tasks in {import_s:.1f}s", flush=True)
        sdk.projects.update(id=pid, sampling="Uncertainty sampling")

        idle = Probe(ls.url, ls.token, pid, None, every=0.5)
        idle.start()
        time.sleep(15)
        idle.stop.set()
        idle.join()

        bport = free_port()
        env = {**os.environ, "MODEL_DIR": str(tmp / "var"), "PORT": str(bport), "HOST": "127.0.0.1",
               "PYTHONPATH": str(REPO), "LABEL_STUDIO_URL": ls.url, "LABEL_STUDIO_API_KEY": ls.token,
               **dict(kv.split("=", 1) for kv in args.env)}
        blog = open(tmp / "backend.log", "ab")
        backend = subprocess.Popen([sys.executable, "-m", "backend", "serve"], cwd=REPO, env=env, stdout=blog,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        burl = f"http://127.0.0.1:{bport}"
        for _ in range(120):
            try:
                if requests.get(burl + "/health", timeout=1).ok:
                    break
            except requests.RequestException:
                time.sleep(0.5)
        sdk.ml.create(url=burl, project=pid, title="LLM-AL backend", is_interactive=False)

        probe = Probe(ls.url, ls.token, pid, burl)
        watch = VersionWatch(ls.url, ls.token, pid)
        probe.start()
        watch.start()
        s = requests.Session()
        s.headers["Authorization"] = f"Token {ls.token}"
        submitted: list[float] = []
        ann_5xx = 0
        next_lat: list[float] = []
        stored: dict[int, int] = {}
        jobs: dict[str, dict] = {}

        def poll_jobs() -> None:
            try:
                for j in requests.get(f"{burl}/jobs", params={"project": pid}, timeout=30).json()["jobs"]:
                    jobs[j["id"]] = j
            except (requests.RequestException, ValueError, KeyError):
                pass

        def n_predictions() -> int:
            return int(s.get(f"{ls.url}/api/projects/{pid}/", timeout=120).json().get("total_predictions_number") or 0)

        for k in range(1, args.annotations + 1):
            t0 = time.perf_counter()
            r = s.get(f"{ls.url}/api/projects/{pid}/next", timeout=120)
            next_lat.append(time.perf_counter() - t0)
            ann_5xx += r.status_code >= 500
            task = r.json()
            text = task["data"]["text"]
            base = text.rsplit(" (", 1)[0] if text not in gold else text
            r = s.post(f"{ls.url}/api/tasks/{task['id']}/annotations/", json={"result": gold.get(base, [])},
                       timeout=120)
            ann_5xx += r.status_code >= 500
            submitted.append(time.time())
            if k in (50, 100, 200):
                stored[k] = n_predictions()
            if k % 10 == 0:
                poll_jobs()
                print(f"{k} annotations, {len(watch.changes)} queue updates", flush=True)
            time.sleep(args.pause_s if k % args.burst == 0 else args.pace_s)
        # let the last retrain land
        end = time.time() + 900
        while time.time() < end:
            poll_jobs()
            if jobs and not any(j["status"] in ("queued", "running") for j in jobs.values()):
                break
            time.sleep(2)
        time.sleep(2)
        probe.stop.set()
        watch.stop.set()
        probe.join()
        watch.join()
        final_predictions = n_predictions()
        versions = requests.get(f"{burl}/versions", params={"project": pid}, timeout=30).json()
        n_human = {v["version"]: v.get("n_human", v.get("n_examples", 0))
                   for v in versions["projects"][str(pid)]["versions"]}
    finally:
        if backend is not None and backend.poll() is None:
            os.killpg(backend.pid, signal.SIGTERM)
            backend.wait(30)
        ls.stop()
        if pg is not None:
            pg.stop()

    # annotation -> first queue update by a version trained on it
    lat = []
    for k, t in enumerate(submitted, start=1):
        done = [tc for tc, v in watch.changes if n_human.get(v, 0) >= k and tc >= t]
        if done:
            lat.append(min(done) - t)
    missing = len(submitted) - len(lat)
    trains = sorted((j for j in jobs.values() if j["kind"] == "train"), key=lambda j: j.get("created_at") or 0)
    rows = []
    for j in trains:
        res = j.get("result") or {}
        w = res.get("written") or {}
        rows.append({"status": j["status"], "n_human": res.get("n_examples"), "fit_s": res.get("fit_seconds"),
                     "read": (res.get("annotations_read") or {}).get("read"),
                     "sync_s": (res.get("annotations_read") or {}).get("seconds"),
                     "scored": w.get("scored"), "written": w.get("tasks"), "deleted": w.get("deleted"),
                     "rescore_s": w.get("seconds"), "phases": w.get("phases"), "total_s": res.get("seconds"),
                     "error": j.get("error")})
    ok = [r for r in rows if r["status"] == "finished" and r["rescore_s"] is not None]
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "?")
    settings_line = " ".join(args.env) or "defaults"
    lines = [f"# Label Studio at scale: {args.tasks:,} tasks on {args.db}", "",
             f"Command: `python -m benchmarks.bench_scale --tasks {args.tasks} --annotations {args.annotations} "
             f"--burst {args.burst} --pace-s {args.pace_s} --pause-s {args.pause_s} --db {args.db}"
             + (f" --env {settings_line}" if args.env else "") + "`",
             f"Machine: {os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, load average "
             f"{os.getloadavg()[0]:.1f} at the end. Backend settings: {settings_line}. "
             f"Wall time {time.time() - t_start:.0f} s.", "",
             f"- import of {args.tasks:,} tasks: {import_s:.1f} s",
             f"- trainings: {len(rows)} ({sum(r['status'] == 'finished' for r in rows)} finished, "
             f"{sum(r['status'] == 'failed' for r in rows)} failed); queue updates seen in Label Studio: "
             f"{len(watch.changes)}",
             f"- annotation -> updated queue: p50 {pct(lat, 50):.1f} s, p95 {pct(lat, 95):.1f} s, max "
             f"{max(lat) if lat else float('nan'):.1f} s ({len(lat)} annotations; {missing} without a later "
             "version)",
             "- predictions in Label Studio after 50/100/200 annotations: "
             + ", ".join(f"{k}: {v:,}" for k, v in sorted(stored.items()))
             + f"; at the end (idle): {final_predictions:,}",
             f"- per retrain (finished, median / max): fit {_mm([r['fit_s'] for r in ok])} s, "
             f"re-score + write + prune {_mm([r['rescore_s'] for r in ok])} s, "
             f"annotation read {_mm([r['sync_s'] for r in ok])} s; candidates scored {_mm([r['scored'] for r in ok], 0)}, "
             f"written {_mm([r['written'] for r in ok], 0)}, deleted {_mm([r['deleted'] for r in ok], 0)}",
             f"- Label Studio API p95, idle (baseline, before the backend was connected): task list "
             f"{pct(idle.lat['list'], 95) * 1000:.0f} ms, next task {pct(idle.lat['next'], 95) * 1000:.0f} ms "
             f"({len(idle.lat['list'])} samples)",
             f"- Label Studio API p95 while the backend trains and writes: task list "
             f"{pct(probe.lat['list'], 95) * 1000:.0f} ms, next task {pct(probe.lat['next'], 95) * 1000:.0f} ms "
             f"({len(probe.lat['list'])} samples); the annotator's next-task p95 {pct(next_lat, 95) * 1000:.0f} ms",
             f"- HTTP 5xx: Label Studio {probe.status5xx['ls'] + ann_5xx}, backend {probe.status5xx['backend']}; "
             f"request errors: {len(probe.errors)} {probe.errors[:5]}", "",
             "| # | status | annotations | read | fit s | scored | written | deleted | list+predict s | write s | prune s | re-score total s | job s |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for i, r in enumerate(rows, 1):
        ph = r["phases"] or {}
        lines.append(f"| {i} | {r['status']} | {r['n_human'] or '-'} | {r['read'] if r['read'] is not None else '-'} | "
                     f"{_f(r['fit_s'])} | {r['scored'] or '-'} | {r['written'] or '-'} | "
                     f"{r['deleted'] if r['deleted'] is not None else '-'} | {_f(ph.get('list_predict'))} | "
                     f"{_f(ph.get('write'))} | {_f(ph.get('prune'))} | {_f(r['rescore_s'])} | {_f(r['total_s'])} |")
    text = "\n".join(lines) + "\n"
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text, encoding="utf-8")
    Path("benchmarks/out").mkdir(parents=True, exist_ok=True)
    Path(f"benchmarks/out/scale_{args.tasks}.json").write_text(json.dumps(
        {"latency": lat, "changes": watch.changes, "rows": rows, "stored": stored, "final": final_predictions,
         "probe": probe.lat, "idle": idle.lat, "next": next_lat}))
    return 0


def _f(x) -> str:
    return f"{x:.1f}" if isinstance(x, (int, float)) else "-"


def _mm(xs: list, digits: int = 1) -> str:
    xs = [x for x in xs if isinstance(x, (int, float))]
    if not xs:
        return "-"
    return f"{statistics.median(xs):.{digits}f} / {max(xs):.{digits}f}"


if __name__ == "__main__":
    raise SystemExit(main())
