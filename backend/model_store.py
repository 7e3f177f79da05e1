"""Versioned, atomically saved model artefacts per project, and the serving-version pointer.

Layout under ``MODEL_DIR/projects/<id>/``::

    project.json            label config and Label Studio host from the last /setup (no tokens)
    serving.json            {"version": "v3", "pinned": false}
    versions/v3/meta.json   time, metrics, sizes; written last
    versions/v3/model/...   the artefacts (safe formats only)

Why this shape: a version directory is assembled under ``versions/.tmp-*`` and renamed into place
in one ``os.rename`` (atomic on POSIX), and ``serving.json`` is replaced with ``os.replace``. A crash
or a full disk at any point leaves either the old state or the new one, never a half-written model
that a worker could load. Every gunicorn worker and RQ worker sharing the directory sees the same
serving version; the in-process cache reloads only when ``serving.json`` names another version.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from backend.errors import BackendError, Conflict, NotFound
from backend.ids import clip, version_number

log = logging.getLogger(__name__)


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON via a temp file + fsync + ``os.replace`` so readers never see a partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(data, fh, ensure_ascii=False, indent=1, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def read_json(path: Path, default: Any = None) -> Any:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        return default


def _fsync_tree(root: Path) -> None:
    for dirpath, _, files in os.walk(root):
        for name in files:
            with open(os.path.join(dirpath, name), "rb") as fh:
                os.fsync(fh.fileno())


class ModelStore:
    """Filesystem store of projects and their model versions (safe for many processes)."""

    def __init__(self, root: Path):
        self.root = Path(root)

    # -- paths ---------------------------------------------------------------------------------
    def project_dir(self, project_id: int) -> Path:
        return self.root / "projects" / str(int(project_id))

    def version_dir(self, project_id: int, version: str) -> Path:
        if not isinstance(version, str) or version_number(version) is None:  # the one version parser
            raise NotFound(f"unknown version {clip(version)}: versions look like v1, v2, ...")
        return self.project_dir(project_id) / "versions" / version

    @contextlib.contextmanager
    def lock(self, project_id: int, name: str = "store", blocking: bool = True) -> Iterator[bool]:
        """An exclusive inter-process lock (``flock``) on one project; yields False when
        ``blocking`` is False and another process holds it. The OS drops it if the holder dies."""
        path = self.project_dir(project_id) / f".{name}.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a+") as fh:
            flags = fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB)
            try:
                fcntl.flock(fh, flags)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    # -- project state -------------------------------------------------------------------------
    def save_project(self, project_id: int, **fields: Any) -> dict:
        path = self.project_dir(project_id) / "project.json"
        with self.lock(project_id):
            data = read_json(path, {}) or {}
            data.update({k: v for k, v in fields.items() if v is not None})
            data["updated_at"] = time.time()
            write_json_atomic(path, data)
        return data

    def project(self, project_id: int) -> dict:
        return read_json(self.project_dir(project_id) / "project.json", {}) or {}

    def projects(self) -> list[int]:
        base = self.root / "projects"
        return sorted(int(p.name) for p in base.iterdir()
                      if p.name.isascii() and p.name.isdigit()) if base.exists() else []

    # -- versions ------------------------------------------------------------------------------
    def versions(self, project_id: int) -> list[dict]:
        """Complete versions (those with meta.json), oldest first."""
        base = self.project_dir(project_id) / "versions"
        out = []
        if base.exists():
            for d in base.iterdir():
                meta = read_json(d / "meta.json") if version_number(d.name) is not None else None
                if meta is not None:
                    out.append({**meta, "version": d.name})
        return sorted(out, key=lambda x: int(x["version"][1:]))

    def save_version(self, project_id: int, write: Callable[[Path], dict], meta: dict) -> str:
        """Assemble a new version with ``write(model_dir) -> extra meta`` and publish it atomically.

        The version becomes the serving one unless the project is pinned. On any failure
        (including a full or read-only disk) nothing is published and the error names the cause.
        """
        vdir = self.project_dir(project_id) / "versions"
        tmp = vdir / f".tmp-{uuid.uuid4().hex}"
        try:
            (tmp / "model").mkdir(parents=True)
            extra = write(tmp / "model") or {}
            with open(tmp / "meta.json", "w", encoding="utf-8") as fh:
                json.dump({**meta, **extra, "created_at": time.time()}, fh, indent=1, sort_keys=True)
            _fsync_tree(tmp)
            with self.lock(project_id):
                nums = [n for d in vdir.iterdir() if (n := version_number(d.name)) is not None]
                version = f"v{max(nums, default=0) + 1}"
                os.rename(tmp, vdir / version)
                serving = self.serving(project_id)
                if not serving.get("pinned"):
                    write_json_atomic(self._serving_path(project_id), {"version": version, "pinned": False})
        except OSError as e:
            raise BackendError(f"could not save the model for project {project_id}: "
                               f"{e.strerror or e} ({type(e).__name__}); the previous version keeps serving") from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        log.info("project %s: saved model %s", project_id, version)
        return version

    def _serving_path(self, project_id: int) -> Path:
        return self.project_dir(project_id) / "serving.json"

    def serving(self, project_id: int) -> dict:
        return read_json(self._serving_path(project_id), {}) or {}

    def serving_version(self, project_id: int) -> str | None:
        return self.serving(project_id).get("version")

    def pin(self, project_id: int, version: str) -> None:
        """Serve ``version`` until unpinned (roll back or hold a version while training goes on)."""
        if not (self.version_dir(project_id, version) / "meta.json").exists():
            raise NotFound(f"project {project_id} has no version {version}")
        with self.lock(project_id):
            write_json_atomic(self._serving_path(project_id), {"version": version, "pinned": True})

    def unpin(self, project_id: int) -> str | None:
        """Go back to serving the newest version."""
        versions = self.versions(project_id)
        if not versions:
            raise Conflict(f"project {project_id} has no trained version yet")
        newest = versions[-1]["version"]
        with self.lock(project_id):
            write_json_atomic(self._serving_path(project_id), {"version": newest, "pinned": False})
        return newest

    def cleanup_partial(self) -> int:
        """Remove ``.tmp-*`` leftovers of crashed saves (never loaded, safe to delete)."""
        n = 0
        for pid in self.projects():
            vdir = self.project_dir(pid) / "versions"
            for d in vdir.glob(".tmp-*") if vdir.exists() else []:
                shutil.rmtree(d, ignore_errors=True)
                n += 1
        return n


class ServingCache:
    """Per-process cache of loaded models: one load per (project, version), swapped under a lock.

    ``get`` costs one small file read per call; the model itself is loaded only when the serving
    version changes, so /predict never reloads per request.
    """

    def __init__(self, store: ModelStore, loader: Callable[[Path], Any]):
        self.store = store
        self.loader = loader
        self._models: dict[int, tuple[str, Any]] = {}
        self._lock = threading.Lock()
        self.loads = 0

    def get(self, project_id: int) -> tuple[str | None, Any]:
        version = self.store.serving_version(project_id)
        if version is None:
            return None, None
        cached = self._models.get(project_id)
        if cached and cached[0] == version:
            return cached
        with self._lock:
            cached = self._models.get(project_id)
            if cached and cached[0] == version:
                return cached
            model = self.loader(self.store.version_dir(project_id, version) / "model")
            self._models[project_id] = (version, model)
            self.loads += 1
            log.info("project %s: loaded model %s", project_id, version)
            return version, model
