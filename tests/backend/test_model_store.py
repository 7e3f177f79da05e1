"""Versions are published atomically, serve across processes, pin/roll back, survive failures."""
from __future__ import annotations

import json
import pytest

from backend.errors import BackendError, NotFound
from backend.model_store import ModelStore, ServingCache


def _writer(payload: str):
    def write(d):
        (d / "weights.json").write_text(json.dumps({"payload": payload}))
        return {"metrics": {"f1": 0.5}}
    return write


def test_versions_are_numbered_and_serve_newest(tmp_path):
    store = ModelStore(tmp_path)
    assert store.serving_version(1) is None
    assert store.save_version(1, _writer("a"), {"event": "x"}) == "v1"
    assert store.save_version(1, _writer("b"), {"event": "y"}) == "v2"
    assert store.serving(1) == {"version": "v2", "pinned": False}
    vs = store.versions(1)
    assert [v["version"] for v in vs] == ["v1", "v2"]
    assert vs[0]["metrics"] == {"f1": 0.5} and vs[0]["created_at"] > 0


def test_pin_rolls_back_and_survives_new_training(tmp_path):
    store = ModelStore(tmp_path)
    store.save_version(1, _writer("a"), {})
    store.save_version(1, _writer("b"), {})
    store.pin(1, "v1")
    assert store.save_version(1, _writer("c"), {}) == "v3"
    assert store.serving_version(1) == "v1"  # pinned: a new version does not take over
    assert store.unpin(1) == "v3"
    with pytest.raises(NotFound):
        store.pin(1, "v9")
    with pytest.raises(NotFound):
        store.pin(1, "../etc")


def test_failed_write_publishes_nothing(tmp_path):
    store = ModelStore(tmp_path)
    store.save_version(1, _writer("a"), {})

    def broken(d):
        (d / "half.bin").write_bytes(b"\0" * 10)
        raise OSError(28, "No space left on device")

    with pytest.raises(BackendError, match="No space left on device.*previous version keeps serving"):
        store.save_version(1, broken, {})
    assert store.serving_version(1) == "v1"
    assert [v["version"] for v in store.versions(1)] == ["v1"]
    assert not list((store.project_dir(1) / "versions").glob(".tmp-*"))


def test_read_only_store_keeps_old_version(tmp_path, monkeypatch):
    """A read-only volume fails at publish time (rename); as root we cannot chmod our way there."""
    store = ModelStore(tmp_path)
    store.save_version(1, _writer("a"), {})

    def erofs(*a, **k):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr("backend.model_store.os.rename", erofs)
    with pytest.raises(BackendError, match="Read-only file system"):
        store.save_version(1, _writer("b"), {})
    monkeypatch.undo()
    assert store.serving_version(1) == "v1"
    assert [v["version"] for v in store.versions(1)] == ["v1"]


def test_crash_leftovers_are_never_loaded_and_cleaned(tmp_path):
    store = ModelStore(tmp_path)
    store.save_version(1, _writer("a"), {})
    leftover = store.project_dir(1) / "versions" / ".tmp-deadbeef" / "model"
    leftover.mkdir(parents=True)
    (leftover / "weights.json").write_text("{partial")
    assert [v["version"] for v in store.versions(1)] == ["v1"]
    assert store.cleanup_partial() == 1


def test_serving_cache_loads_once_per_version(tmp_path):
    store = ModelStore(tmp_path)
    loads = []

    def loader(path):
        loads.append(path.parent.name)
        return json.loads((path / "weights.json").read_text())

    cache = ServingCache(store, loader)
    assert cache.get(1) == (None, None)
    store.save_version(1, _writer("a"), {})
    for _ in range(20):
        assert cache.get(1) == ("v1", {"payload": "a"})
    other_process = ModelStore(tmp_path)  # e.g. an RQ worker publishing v2
    other_process.save_version(1, _writer("b"), {})
    assert cache.get(1) == ("v2", {"payload": "b"})
    assert loads == ["v1", "v2"]
