"""RQ scale-out: throughput of training and re-scoring jobs with 1 vs 2 ``rq worker`` processes on
three projects, and queue latency from the webhook to the job's start, measured in the same run.

Everything is real except Label Studio: a private ``redis-server``, the backend under gunicorn
with ``REDIS_URL`` set (jobs arrive through ``POST /webhook`` and ``POST /jobs``), and
``rq worker --worker-class backend.rq_queue.LALWorker`` processes whose jobs train the project's
local model on the bundled Hausa sample (``tests.deploy.jobrunner``: same per-project lock and
atomic publish as ``MLBackend.fit``, no Label Studio reads). One worker is the baseline.

    python -m benchmarks.bench_workers --rounds 4 --examples 24 --epochs 4
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
from tqdm import tqdm

from benchmarks import save_results

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "out"
RESULTS = REPO / "benchmarks" / "results" / "workers.md"
PROJECTS = (1, 2, 3)
CONFIG = ('<View><Labels name="label" toName="text"><Label value="PER"/><Label value="ORG"/>'
          '<Label value="LOC"/><Label value="DATE"/></Labels><Text name="text" value="$text"/></View>')


def _free_port() -> int:
    from devtools.ls_process import free_port

    return free_port()


def _wait_http(url: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: process exited")
        try:
            if requests.get(url, timeout=2).ok:
                return
        except requests.RequestException:
            time.sleep(0.3)
    raise TimeoutError(url)


class Stack:
    """redis-server + gunicorn backend + N LALWorkers in a temp dir."""

    def __init__(self, workers: int, env: dict, root: Path):
        self.root = root
        self.procs: list[subprocess.Popen] = []
        rport = _free_port()
        self.redis_url = f"redis://127.0.0.1:{rport}/0"
        (root / "redis").mkdir(parents=True)
        self._spawn([shutil.which("redis-server"), "--port", str(rport), "--bind", "127.0.0.1", "--save", "",
                     "--dir", str(root / "redis")], "redis", new_session=False)
        self.env = {**os.environ, "PYTHONPATH": str(REPO), "MODEL_DIR": str(root / "var"), "OMP_NUM_THREADS": "1",
                    "LAL_JOB_RUNNER": "tests.deploy.jobrunner:run_job", "REDIS_URL": self.redis_url, **env}
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        backend = self._spawn([sys.executable, "-m", "backend", "serve"], "backend",
                              env={**self.env, "PORT": str(self.port), "HOST": "127.0.0.1", "WORKERS": "1"})
        rq = str(Path(sys.executable).with_name("rq"))
        for i in range(workers):
            self._spawn([rq, "worker", "--url", self.redis_url, "--worker-class", "backend.rq_queue.LALWorker",
                         "--name", f"w{i + 1}", "--maintenance-interval", "30", "lal"], f"w{i + 1}", env=self.env)
        _wait_http(self.url + "/health", backend)
        from redis import Redis
        from rq import Worker

        conn = Redis.from_url(self.redis_url)
        end = time.monotonic() + 180
        while len(Worker.all(connection=conn)) < workers:
            if time.monotonic() > end:
                raise TimeoutError("workers did not register")
            time.sleep(0.2)
        for p in PROJECTS:
            requests.post(f"{self.url}/setup", json={"project": f"{p}.1", "schema": CONFIG}, timeout=30).raise_for_status()

    def _spawn(self, cmd: list[str], name: str, env: dict | None = None, new_session: bool = True) -> subprocess.Popen:
        p = subprocess.Popen(cmd, cwd=REPO, env=env or os.environ, stdout=open(self.root / f"{name}.log", "wb"),
                             stderr=subprocess.STDOUT, start_new_session=new_session)
        self.procs.append(p)
        return p

    def job(self, job_id: str) -> dict:
        return requests.get(f"{self.url}/jobs/{job_id}", timeout=30).json()

    def run_round(self, kind: str) -> tuple[float, list[dict]]:
        """One job per project submitted at once; wall time until all ended, and their records."""
        t0 = time.time()
        ids, sent = [], {}
        for p in PROJECTS:
            ts = time.time()
            if kind == "train":  # exactly what Label Studio sends on an annotation
                r = requests.post(f"{self.url}/webhook", timeout=30,
                                  json={"action": "ANNOTATION_CREATED", "project": {"id": p}})
                jid = r.json()["job"]
            else:
                jid = requests.post(f"{self.url}/jobs", json={"kind": kind, "project": p}, timeout=30).json()["id"]
            ids.append(jid)
            sent[jid] = ts
        recs = []
        for jid in ids:
            while (rec := self.job(jid))["status"] in ("queued", "running"):
                time.sleep(0.05)
            if rec["status"] != "finished":
                raise RuntimeError(f"job {jid} {rec['status']}: {rec.get('error')}")
            rec["latency"] = rec["started_at"] - sent[jid]
            recs.append(rec)
        return max(r["ended_at"] for r in recs) - t0, recs

    def stop(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM) if p.pid != os.getpid() else None
                except ProcessLookupError:
                    pass
                except PermissionError:
                    p.terminate()
        for p in self.procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()


def measure(workers: int, rounds: int, env: dict) -> dict:
    root = Path(tempfile.mkdtemp(prefix=f"bench-workers-{workers}-"))
    stack = Stack(workers, env, root)
    out: dict = {"workers": workers}
    try:
        stack.run_round("train")  # warm-up: first version of each project (rescore needs one)
        for kind in ("train", "rescore"):
            walls, recs = [], []
            for _ in tqdm(range(rounds), desc=f"{workers} worker(s) {kind}", leave=False):
                wall, rs = stack.run_round(kind)
                walls.append(wall)
                recs += rs
            n = len(recs)
            out[kind] = {"jobs": n, "wall_s": round(sum(walls), 3), "jobs_per_min": round(60 * n / sum(walls), 2),
                         "job_s_median": round(statistics.median(r["ended_at"] - r["started_at"] for r in recs), 3),
                         "latency_ms_median": round(1000 * statistics.median(r["latency"] for r in recs), 1),
                         "latency_ms_max": round(1000 * max(r["latency"] for r in recs), 1),
                         "by_worker": {w: sum(r["worker"] == w for r in recs) for w in sorted({r["worker"] for r in recs})}}
        # latency of a lone webhook on an idle queue (no job ahead of it)
        lone = []
        for _ in range(rounds):
            ts = time.time()
            r = requests.post(f"{stack.url}/webhook", json={"action": "ANNOTATION_CREATED", "project": {"id": 1}},
                              timeout=30)
            jid = r.json()["job"]
            while (rec := stack.job(jid))["status"] in ("queued", "running"):
                time.sleep(0.02)
            lone.append(rec["started_at"] - ts)
        out["idle_latency_ms_median"] = round(1000 * statistics.median(lone), 1)
    finally:
        stack.stop()
        shutil.rmtree(root, ignore_errors=True)
    return out


def write_md(res: dict, args) -> str:
    one, two = res["runs"]
    lines = [
        "# RQ workers: 1 vs 2 on three projects",
        "",
        f"`python -m benchmarks.bench_workers --rounds {args.rounds} --examples {args.examples} --epochs {args.epochs}`"
        f" on {res['cpus']} shared CPU core(s) (`OMP_NUM_THREADS=1` per process). Jobs come in through the real "
        "backend (`POST /webhook` for training, `POST /jobs` for re-scoring) and run in real "
        "`rq worker --worker-class backend.rq_queue.LALWorker` processes; each training job fits the local "
        f"NER tagger on {args.examples} bundled Hausa sentences and publishes a version, each re-scoring job "
        "loads the serving version and scores 32 sentences. One worker is the baseline.",
        "",
        "| | 1 worker | 2 workers | ratio |",
        "|---|---:|---:|---:|",
    ]
    for kind in ("train", "rescore"):
        a, b = one[kind], two[kind]
        lines.append(f"| {kind}: jobs/min | {a['jobs_per_min']} | {b['jobs_per_min']} | "
                     f"{b['jobs_per_min'] / a['jobs_per_min']:.2f}x |")
        lines.append(f"| {kind}: median job time (s) | {a['job_s_median']} | {b['job_s_median']} | |")
        lines.append(f"| {kind}: webhook/submit -> start, median (ms) | {a['latency_ms_median']} | "
                     f"{b['latency_ms_median']} | |")
    lines.append(f"| idle queue: webhook -> job start, median (ms) | {one['idle_latency_ms_median']} | "
                 f"{two['idle_latency_ms_median']} | |")
    lines += ["", f"Jobs per worker (2 workers): train {two['train']['by_worker']}, "
                  f"rescore {two['rescore']['by_worker']}.", "", res["note"], ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_workers", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=4, help="rounds of one job per project, per kind")
    p.add_argument("--examples", type=int, default=24, help="sentences per training job")
    p.add_argument("--epochs", type=int, default=4, help="tagger epochs per training job")
    p.add_argument("--no-results", action="store_true", help="do not rewrite benchmarks/results/workers.md")
    args = p.parse_args(argv)
    if not shutil.which("redis-server"):
        print("redis-server not found (apt-get install redis-server)", file=sys.stderr)
        return 2
    env = {"LAL_TEST_EXAMPLES": str(args.examples), "LAL_TEST_EPOCHS": str(args.epochs)}
    load0 = os.getloadavg()[0]
    runs = [measure(w, args.rounds, env) for w in tqdm((1, 2), desc="configurations")]
    load = (round(load0, 1), round(os.getloadavg()[0], 1))
    one, two = runs
    speed = two["train"]["jobs_per_min"] / one["train"]["jobs_per_min"]
    cpus = os.cpu_count()
    note = (f"Reading: a second worker gives {speed:.2f}x the training throughput here. Training is CPU-bound, "
            f"so on {cpus} core(s) shared with other processes two workers can at best split the cores; on a "
            "machine with a core (or GPU) per worker the gain approaches the number of workers, as long as "
            "there are at least as many projects with pending work (one project never trains on two workers "
            "at once). Queue latency under load counts the jobs ahead in the queue; on an idle queue it is what "
            f"RQ adds between the webhook and the job's start. 1-min load average at start/end: {load[0]}/{load[1]} "
            "(other processes on the machine).")
    res = {"cpus": cpus, "runs": runs, "note": note, "args": vars(args)}
    md = write_md(res, args)
    save_results(res, OUT / "bench_workers.json", md, None if args.no_results else RESULTS)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
