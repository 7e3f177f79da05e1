"""The install scripts heal an interrupted install: ``scripts/_venv.sh`` is killed in the middle
of pip writing a package, and the next run rebuilds the venv instead of failing in it forever (a
first ``demo.sh`` stopped during the Label Studio install used to leave a venv pip itself could no
longer use). Runs on a copy of the scripts in a temp folder with a locally built wheel (no index,
no network), never on the repository's own venvs."""
from __future__ import annotations

import base64
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow
N_FILES = 1500  # enough files that pip is still writing them when the test kills it


def _wheel(folder: Path, name: str = "lalfake", version: str = "1.0") -> Path:
    """A pure-Python wheel with many modules, built by hand (no setuptools, no index)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-{version}-py3-none-any.whl"
    files = {f"{name}/__init__.py": "def check():\n    return 'ok'\n"}
    files.update({f"{name}/m{i:05d}.py": f"X = {i}\n" + "# padding\n" * 200 for i in range(N_FILES)})
    info = f"{name}-{version}.dist-info"
    files[f"{info}/METADATA"] = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    files[f"{info}/WHEEL"] = "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    record = []
    for f, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{f},sha256={digest},{len(text.encode())}")
    files[f"{info}/RECORD"] = "\n".join(record + [f"{info}/RECORD,,"]) + "\n"
    with zipfile.ZipFile(path, "w") as z:
        for f, text in files.items():
            z.writestr(f, text)
    return folder


@pytest.fixture
def sandbox(tmp_path):
    """A repository stand-in: the real scripts, a one-line requirements file, a local wheel."""
    root = tmp_path / "repo"
    shutil.copytree(REPO / "scripts", root / "scripts")
    (root / "requirements.txt").write_text("lalfake==1.0\n")
    wheels = _wheel(tmp_path / "wheels")
    env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheels), "PIP_CONFIG_FILE": os.devnull,
           "LS_PACKAGE": "lalfake==1.0", "PYTHON": sys.executable if "venv" not in sys.prefix else
           str(Path(sys.base_prefix) / "bin" / "python3")}
    env.pop("LABEL_STUDIO_BIN", None)
    return root, env


def _run(root: Path, env: dict, call: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", f"source scripts/_venv.sh && {call}"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=timeout)


def _kill_while_pip_writes(root: Path, env: dict, call: str, venv: str) -> None:
    proc = subprocess.Popen(["bash", "-c", f"source scripts/_venv.sh && {call}"], cwd=root, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    end = time.monotonic() + 240
    try:
        while time.monotonic() < end and proc.poll() is None:
            pkgs = list((root / venv / "lib").glob("python3*/site-packages/lalfake"))
            if pkgs and 0 < len(list(pkgs[0].iterdir())) < N_FILES // 2:
                os.killpg(proc.pid, signal.SIGKILL)  # Ctrl-C in the worst place: pip half-way
                proc.wait(10)
                return
            time.sleep(0.005)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    pytest.fail(f"never caught pip half-way (exit {proc.returncode}): make the wheel bigger")


def _imports(root: Path, venv: str) -> str:
    out = subprocess.run([str(root / venv / "bin" / "python"), "-c",
                          "import lalfake, lalfake.m01499; print(lalfake.check())"],
                         capture_output=True, text=True, timeout=60)
    return out.stdout.strip()


@pytest.mark.parametrize("call, venv", [("ensure_ls_venv", ".venv-ls"),
                                        ("ensure_app_venv requirements.txt", ".venv")])
def test_install_killed_half_way_heals_on_the_next_run(sandbox, call, venv):
    root, env = sandbox
    _kill_while_pip_writes(root, env, call, venv)
    v = root / venv
    assert (v / ".lal-installing").exists()  # the killed run left its marker ...
    assert _imports(root, venv) != "ok"  # ... and a venv that does not work

    again = _run(root, env, call)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "incomplete (an interrupted install?): building it again" in again.stdout
    assert _imports(root, venv) == "ok"
    assert not (v / ".lal-installing").exists()
    assert not list(v.glob(".installed-*.tmp.*"))  # the stamp was renamed into place

    third = _run(root, env, call)  # healthy now: nothing to install, nothing rebuilt
    assert third.returncode == 0 and "installing" not in third.stdout and "incomplete" not in third.stdout


def test_half_written_distribution_without_marker_is_rebuilt(sandbox):
    """The reported state (left by the old script, which had no marker): a dist-info without its
    METADATA, on which every later pip run failed with a TypeError; and a package file gone."""
    root, env = sandbox
    first = _run(root, env, "ensure_ls_venv")
    assert first.returncode == 0, first.stdout + first.stderr
    site = next((root / ".venv-ls" / "lib").glob("python3*/site-packages"))
    stamp = root / ".venv-ls" / ".installed-ls"
    assert stamp.read_text().split() == ["req", "lalfake", "mod", "lalfake"]
    (site / "lalfake" / "m00042.py").unlink()
    check = subprocess.run([str(root / ".venv-ls" / "bin" / "python"), str(root / "scripts" / "_venv_check.py"),
                            str(stamp)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 1 and "lalfake: 1 file(s) missing, e.g. lalfake/m00042.py" in check.stderr
    (site / "lalfake-1.0.dist-info" / "METADATA").unlink()

    again = _run(root, env, "ensure_ls_venv")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "building it again" in again.stdout
    assert _imports(root, ".venv-ls") == "ok"
