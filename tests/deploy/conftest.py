"""Fixtures of the deployment tests: a real ``redis-server`` on a free port in a temp dir, and real
``rq worker`` processes (started and stopped by the fixtures, never shared with other tests)."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _required(what: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{what} is required in CI")
    pytest.skip(f"{what} not available")


@pytest.fixture
def redis_url(tmp_path):
    """A private redis-server (no persistence) for one test."""
    from devtools.ls_process import free_port

    exe = shutil.which("redis-server")
    if not exe:
        _required("redis-server")
    port = free_port()
    d = tmp_path / "redis"
    d.mkdir()
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(d), "--save", "",
                             "--appendonly", "no"], stdout=open(d / "redis.log", "wb"), stderr=subprocess.STDOUT)
    from redis import Redis

    conn = Redis(port=port)
    for _ in range(100):
        try:
            conn.ping()
            break
        except Exception:
            time.sleep(0.05)
    url = f"redis://127.0.0.1:{port}/0"
    yield url
    proc.terminate()
    proc.wait(10)


class Workers:
    """``rq worker`` processes, started exactly as docker-compose.yml starts them."""

    def __init__(self, redis_url: str, model_dir: Path, env: dict, log_dir: Path):
        self.redis_url, self.model_dir, self.env, self.log_dir = redis_url, Path(model_dir), env, Path(log_dir)
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str, worker_class: str = "backend.rq_queue.LALWorker") -> subprocess.Popen:
        rq = Path(sys.executable).with_name("rq")
        env = {**os.environ, "PYTHONPATH": str(REPO), "MODEL_DIR": str(self.model_dir), "OMP_NUM_THREADS": "1",
               "LAL_JOB_HEARTBEAT_TTL": "4", **self.env}
        cmd = [str(rq), "worker", "--url", self.redis_url, "--worker-class", worker_class, "--name", name,
               "--maintenance-interval", "5", "--worker-ttl", "30", "lal"]
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=open(self.log_dir / f"{name}.log", "ab"),
                                stderr=subprocess.STDOUT, start_new_session=True)
        self.procs[name] = proc
        return proc

    def wait_registered(self, n: int, timeout: float = 60) -> None:
        from redis import Redis
        from rq import Worker

        conn = Redis.from_url(self.redis_url)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if len(Worker.all(connection=conn)) >= n:
                return
            for name, p in self.procs.items():
                assert p.poll() is None, f"worker {name} exited:\n{self.log(name)}"
            time.sleep(0.2)
        raise TimeoutError("workers did not register:\n" + "\n".join(self.log(n) for n in self.procs))

    def log(self, name: str) -> str:
        p = self.log_dir / f"{name}.log"
        return p.read_text(errors="replace")[-4000:] if p.exists() else ""

    def stop(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                with_suppress_kill(p.pid, signal.SIGTERM)
        for p in self.procs.values():
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                with_suppress_kill(p.pid, signal.SIGKILL)
                p.wait(5)


def with_suppress_kill(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass


@pytest.fixture
def rq_workers(redis_url, tmp_path):
    started: list[Workers] = []

    def make(model_dir: Path, env: dict | None = None) -> Workers:
        w = Workers(redis_url, model_dir, env or {}, tmp_path)
        started.append(w)
        return w

    yield make
    for w in started:
        w.stop()
