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


@dataclass
class LabelStudioProcess:
    data_dir: Path
    port: int
    token: str
    username: str = "admin@example.com"
    password: str = field(default_factory=lambda: secrets.token_hex(8), repr=False)
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
