"""Start a real Label Studio (its own virtualenv) on 127.0.0.1, non-interactively, with a known
API token: used by the end-to-end tests and the demo. Settings from
``../shared/docs/label-studio-protocol.md`` (legacy token on, local ML backends allowed, SSRF
block off so the backend's /webhook gets registered, no analytics or update checks).
"""
from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent


def find_label_studio() -> str:
    """``LABEL_STUDIO_BIN``, else ``.venv-ls/bin/label-studio`` in the repo, else PATH."""
    cands = [os.environ.get("LABEL_STUDIO_BIN"), str(REPO / ".venv-ls" / "bin" / "label-studio"),
             shutil.which("label-studio")]
    for c in cands:
        if c and Path(c).exists():
            return c
    raise FileNotFoundError("Label Studio not found: run `bash scripts/install.sh --with-label-studio` "
                            "or set LABEL_STUDIO_BIN")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_user(user: str | None) -> list[str]:
    """Command prefix that runs a program as ``user`` (PostgreSQL refuses to run as root)."""
    return ["runuser", "-u", user, "--"] if user else []


@dataclass
class PostgresCluster:
    """A throw-away PostgreSQL cluster for Label Studio: ``initdb`` in ``data_dir``, ``pg_ctl``
    start on 127.0.0.1:``port`` (socket in the data dir), one database, torn down by ``stop``.

    Why: production runs Label Studio on PostgreSQL (docker-compose.yml) because SQLite serialises
    writers ("database is locked" 500s while the backend imports predictions); the tests and
    benchmarks must see the same database. As root (CI) it runs as the ``postgres`` system user
    that Debian's package creates."""

    data_dir: Path | None = None  # None: a fresh directory under the system temp dir, removed by stop
    port: int = field(default_factory=lambda: free_port())
    user: str = "labelstudio"
    password: str = field(default_factory=lambda: secrets.token_hex(12), repr=False)
    database: str = "labelstudio"
    proc_user: str | None = None

    @staticmethod
    def bindir() -> Path:
        """``PG_BINDIR``, else the newest /usr/lib/postgresql/<major>/bin, else PATH's initdb."""
        if os.environ.get("PG_BINDIR"):
            return Path(os.environ["PG_BINDIR"])
        majors = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
        if majors:
            return majors[-1].parent
        found = shutil.which("initdb")
        if not found:
            raise FileNotFoundError("PostgreSQL not found: apt-get install postgresql (or set PG_BINDIR)")
        return Path(found).resolve().parent

    def env(self) -> dict:
        """Label Studio's database settings (core/settings/base.py: DJANGO_DB, POSTGRE_*)."""
        return {"DJANGO_DB": "default", "POSTGRE_NAME": self.database, "POSTGRE_USER": self.user,
                "POSTGRE_PASSWORD": self.password, "POSTGRE_HOST": "127.0.0.1", "POSTGRE_PORT": str(self.port)}

    def _run(self, *args: str, **kw) -> subprocess.CompletedProcess:
        return subprocess.run([*_as_user(self.proc_user), *args], check=True, capture_output=True, text=True, **kw)

    def start(self) -> "PostgresCluster":
        import pwd

        import tempfile

        if os.geteuid() == 0 and self.proc_user is None:
            self.proc_user = "postgres"
        if self.data_dir is None:  # not under pytest's 0700 tmp dirs, which the postgres user cannot enter
            self.data_dir = Path(tempfile.mkdtemp(prefix="lal-postgres-"))
            self._owned = True
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.proc_user:
            pw = pwd.getpwnam(self.proc_user)
            os.chown(self.data_dir, pw.pw_uid, pw.pw_gid)
        bindir = self.bindir()
        pgdata = self.data_dir / "pgdata"
        pwfile = self.data_dir / "pwfile"
        pwfile.write_text(self.password)
        if self.proc_user:
            os.chown(pwfile, pwd.getpwnam(self.proc_user).pw_uid, -1)
        pwfile.chmod(0o600)
        try:
            self._run(str(bindir / "initdb"), "-D", str(pgdata), "-U", self.user, "--pwfile", str(pwfile),
                      "-A", "scram-sha-256", "-E", "UTF8", "--locale", "C.UTF-8", "--no-sync")
        finally:
            pwfile.unlink(missing_ok=True)
        # settings in the spirit of docker-compose.yml's postgres service, sized for a test box
        opts = (f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data_dir} -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=100 -c shared_buffers=128MB")
        self._run(str(bindir / "pg_ctl"), "-D", str(pgdata), "-l", str(self.data_dir / "postgres.log"),
                  "-o", opts, "-w", "-t", "60", "start")
        env = {**os.environ, "PGPASSWORD": self.password}
        self._run(str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user,
                  self.database, env=env)
        return self

    def stop(self) -> None:
        pgdata = self.data_dir / "pgdata"
        if (pgdata / "postmaster.pid").exists():
            subprocess.run([*_as_user(self.proc_user), str(self.bindir() / "pg_ctl"), "-D", str(pgdata),
                            "-m", "immediate", "-w", "stop"], capture_output=True, check=False)
        if getattr(self, "_owned", False) and self.data_dir is not None:
            shutil.rmtree(self.data_dir, ignore_errors=True)


@dataclass
class LabelStudioProcess:
    data_dir: Path
    port: int
    token: str
    username: str = "admin@example.com"
    password: str = field(default_factory=lambda: secrets.token_hex(8), repr=False)
    db: PostgresCluster | None = None  # None: Label Studio's SQLite file in data_dir
    proc: subprocess.Popen | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LABEL_STUDIO_", "DJANGO"))}
        env.update({
            "LABEL_STUDIO_BASE_DATA_DIR": str(self.data_dir), "LABEL_STUDIO_USERNAME": self.username,
            "LABEL_STUDIO_PASSWORD": self.password, "LABEL_STUDIO_USER_TOKEN": self.token,
            "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true", "ML_BLOCK_LOCAL_IP": "false",
            "SSRF_PROTECTION_ENABLED": "false", "LATEST_VERSION_CHECK": "false", "COLLECT_ANALYTICS": "false",
            "SENTRY_DSN": "", "FRONTEND_SENTRY_DSN": "", "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "false",
        })
        env = {k: v for k, v in env.items() if not k.startswith("POSTGRE_")}
        if self.db is not None:
            env.update(self.db.env())
        return env

    def start(self, timeout: float = 240.0) -> "LabelStudioProcess":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.data_dir / "label-studio.log"
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [find_label_studio(), "start", "--no-browser", "--internal-host", "127.0.0.1", "--port", str(self.port),
             "--data-dir", str(self.data_dir)],
            env=self.env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Label Studio exited with {self.proc.returncode}; see {self.log_path}")
            try:
                r = requests.get(f"{self.url}/api/projects", headers={"Authorization": f"Token {self.token}"},
                                 timeout=2)
                if r.status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(1.0)
        self.stop()
        raise TimeoutError(f"Label Studio did not answer within {timeout:.0f}s; see {self.log_path}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            import signal

            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)


def start_label_studio(data_dir: Path, port: int | None = None, token: str | None = None) -> LabelStudioProcess:
    return LabelStudioProcess(Path(data_dir), port or free_port(), token or secrets.token_hex(20)).start()
