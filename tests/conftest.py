"""Shared fixtures: settings on a temp MODEL_DIR, the Flask test client, a real Label Studio
(session-wide, own venv, temp data dir, known token) and a real gunicorn backend process."""
from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from model.shared_data import SHARED

REPO = Path(__file__).resolve().parent.parent
NER_CONFIG = ('<View><Labels name="label" toName="text"><Label value="PER"/><Label value="ORG"/>'
              '<Label value="LOC"/><Label value="DATE"/></Labels><Text name="text" value="$text"/></View>')
NEWS_CONFIG = ('<View><Text name="text" value="$text"/><Choices name="topic" toName="text">'
               + "".join(f'<Choice value="{c}"/>' for c in
                         ("business", "entertainment", "health", "politics", "religion", "sports", "technology"))
               + "</Choices></View>")


def shared_path(*parts: str) -> Path:
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"{p} not present (../shared is beside the repo in CI)")
    return p


@pytest.fixture
def make_settings(tmp_path):
    from backend.settings import Settings

    def make(**env):
        base = {"MODEL_DIR": str(tmp_path / "var"), "LOG_LEVEL": "INFO"}
        base.update({k: str(v) for k, v in env.items()})
        return Settings.from_env(base)

    return make


@pytest.fixture
def app_client(make_settings):
    from backend.app import create_app

    settings = make_settings()
    app = create_app(settings)
    yield app.test_client(), app
    app.extensions["lal"]["queue"].close()


def _required(what: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{what} is required in CI")
    pytest.skip(f"{what} not available")


@pytest.fixture(scope="session")
def label_studio(request, tmp_path_factory):
    """A real Label Studio 1.23.2 on 127.0.0.1 for the whole session: on SQLite (the quick path),
    or on PostgreSQL with ``LAL_TEST_LS_DB=postgresql`` (every e2e test on production's database)."""
    from devtools.ls_process import LabelStudioProcess, find_label_studio, free_port

    if os.environ.get("LAL_TEST_LS_DB", "sqlite") == "postgresql":
        yield request.getfixturevalue("label_studio_pg")
        return
    try:
        find_label_studio()
    except FileNotFoundError:
        _required("Label Studio (.venv-ls)")
    ls = LabelStudioProcess(tmp_path_factory.mktemp("label-studio"), free_port(), secrets.token_hex(20))
    ls.start(timeout=420)  # its first start migrates a fresh database: minutes on a busy 2-core box
    yield ls
    ls.stop()


@pytest.fixture(scope="session")
def postgres():
    """A throw-away PostgreSQL cluster (Debian's postgresql package; as root it runs as the
    ``postgres`` user) for the session's Label Studio on PostgreSQL."""
    from devtools.ls_process import PostgresCluster

    try:
        PostgresCluster.bindir()
    except FileNotFoundError:
        _required("PostgreSQL (apt-get install postgresql)")
    pg = PostgresCluster().start()
    yield pg
    pg.stop()


@pytest.fixture(scope="session")
def label_studio_pg(tmp_path_factory, postgres):
    """A real Label Studio 1.23.2 on PostgreSQL, as production runs it (docker-compose.yml)."""
    from devtools.ls_process import LabelStudioProcess, find_label_studio, free_port

    try:
        find_label_studio()
    except FileNotFoundError:
        _required("Label Studio (.venv-ls)")
    ls = LabelStudioProcess(tmp_path_factory.mktemp("label-studio-pg"), free_port(), secrets.token_hex(20),
                            db=postgres)
    ls.start(timeout=420)
    yield ls
    ls.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_label_studio(request):
    """The session's Label Studio on SQLite (the quick path) and on PostgreSQL (production)."""
    return request.getfixturevalue("label_studio" if request.param == "sqlite" else "label_studio_pg")


class BackendProcess:
    """The backend exactly as users run it: gunicorn with backend/gunicorn.conf.py."""

    def __init__(self, model_dir: Path, env: dict, port: int | None = None):
        from devtools.ls_process import free_port

        self.model_dir = Path(model_dir)
        self.port = port or free_port()
        self.env = env
        self.proc: subprocess.Popen | None = None
        self.log_path = self.model_dir.parent / f"backend-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> "BackendProcess":
        env = {**os.environ, "MODEL_DIR": str(self.model_dir), "PORT": str(self.port), "HOST": "127.0.0.1",
               "PYTHONPATH": str(REPO), **self.env}
        self.proc = subprocess.Popen([sys.executable, "-m", "backend", "serve"], cwd=REPO, env=env,
                                     stdout=open(self.log_path, "ab"), stderr=subprocess.STDOUT,
                                     start_new_session=True)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            assert self.proc.poll() is None, self.log()
            try:
                if requests.get(self.url + "/health", timeout=1).ok:
                    return self
            except requests.RequestException:
                time.sleep(0.2)
        raise TimeoutError(self.log())

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(30)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:] if self.log_path.exists() else ""


@pytest.fixture
def backend_process(tmp_path):
    procs: list[BackendProcess] = []

    def start(env: dict | None = None, model_dir: Path | None = None, port: int | None = None) -> BackendProcess:
        p = BackendProcess(model_dir or tmp_path / "var", env or {}, port).start()
        procs.append(p)
        return p

    yield start
    for p in procs:
        p.stop()
