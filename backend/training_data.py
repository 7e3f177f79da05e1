"""The project's annotated tasks, kept in ``MODEL_DIR`` and refreshed incrementally between fits.

Why: re-reading every annotated task with all its predictions at each fit makes fits slower as a
project grows (weeks of labelling = thousands of tasks read again per retrain). Label Studio bumps
a task's ``updated_at`` whenever one of its annotations is created, updated or deleted
(tasks/models.py, ``Annotation.update_task``), so a fit reads

- the ids of the annotated tasks (ids only: cheap at any size) -> tasks no longer annotated
  (annotation deleted, task deleted) leave the set;
- the annotated tasks changed since the last read (``filter:tasks:updated_at``, with a margin for
  transactions that committed late) and the annotated ids the set does not know yet -> created
  and edited annotations replace the cached copy.

Every ``FULL_SYNC_EVERY`` fits, and whenever the cache is missing or unreadable, the set is
rebuilt from a full re-read: a consistency check, logged when it finds a difference.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

from backend.ls_client import LabelStudioClient, parse_ls_time
from backend.ls_json import slim_task
from backend.model_store import ModelStore, read_json, write_json_atomic

log = logging.getLogger(__name__)
FORMAT = 1
# re-read tasks updated up to this long before the newest change seen: a transaction that stamped
# updated_at before another one but committed after it must not be missed
WATERMARK_MARGIN_S = 120.0


class AnnotationSet:
    """Slim copies (``ls_json.slim_task``) of a project's annotated tasks, by task id."""

    def __init__(self, store: ModelStore, project_id: int, full_every: int = 20):
        self.store = store
        self.project_id = project_id
        self.full_every = max(1, int(full_every))

    @property
    def path(self) -> Path:
        return self.store.project_dir(self.project_id) / "annotated_tasks.json"

    def _load(self) -> dict | None:
        data = read_json(self.path, None)
        if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("tasks"), dict):
            return None
        return data

    def cached(self) -> list[dict]:
        """The tasks as last synced (empty when never synced)."""
        data = self._load()
        return list(data["tasks"].values()) if data else []

    def sync(self, client: LabelStudioClient, full: bool | None = None) -> tuple[list[dict], dict]:
        """Bring the set up to date and return (its tasks, what the sync read). ``full``: None =
        incremental unless the periodic full re-read is due; True/False force it."""
        t0 = time.perf_counter()
        data = self._load()
        due = data is None or int(data.get("fits_since_full", 0)) + 1 >= self.full_every
        if full or (full is None and due) or data is None:
            tasks, info = self._full(client, data)
        else:
            tasks, info = self._incremental(client, data)
        info["seconds"] = round(time.perf_counter() - t0, 3)
        return tasks, info

    def _full(self, client: LabelStudioClient, old: dict | None) -> tuple[list[dict], dict]:
        listed = client.iter_tasks(self.project_id, annotated=True)
        tasks = {str(t["id"]): slim_task(t) for t in listed}
        info = {"mode": "full", "read": len(listed), "removed": 0}
        if old is not None:
            differ = sorted(int(k) for k in set(tasks) ^ set(old["tasks"])) + sorted(
                int(k) for k in set(tasks) & set(old["tasks"]) if _annotations(tasks[k]) != _annotations(old["tasks"][k]))
            info["consistency_differences"] = len(differ)
            if differ:
                log.warning("project %s: the incremental annotation set differed from a full re-read on %d "
                            "task(s) (e.g. %s); rebuilt from the re-read", self.project_id, len(differ), differ[:5])
        self._save(tasks, _newest(listed, 0.0), fits_since_full=0)
        return list(tasks.values()), info

    def _incremental(self, client: LabelStudioClient, data: dict) -> tuple[list[dict], dict]:
        tasks: dict[str, dict] = data["tasks"]
        watermark = float(data.get("watermark") or 0.0)
        ids_now = client.annotated_task_ids(self.project_id)
        removed = [k for k in tasks if int(k) not in ids_now]
        for k in removed:
            del tasks[k]
        changed = client.annotated_changed_since(self.project_id, watermark - WATERMARK_MARGIN_S)
        known = {int(t["id"]) for t in changed} | {int(k) for k in tasks}
        unseen = sorted(ids_now - known)  # annotated before the watermark but never read (e.g. imported)
        if unseen:
            changed += client.tasks_by_ids(self.project_id, unseen)
        for t in changed:
            if int(t["id"]) in ids_now:
                tasks[str(t["id"])] = slim_task(t)
        self._save(tasks, _newest(changed, watermark), fits_since_full=int(data.get("fits_since_full", 0)) + 1)
        return list(tasks.values()), {"mode": "incremental", "read": len(changed), "removed": len(removed)}

    def _save(self, tasks: dict[str, dict], watermark: float, fits_since_full: int) -> None:
        write_json_atomic(self.path, {"format": FORMAT, "tasks": tasks, "watermark": watermark,
                                      "fits_since_full": fits_since_full, "synced_at": time.time()})


def _annotations(task: dict) -> list:
    return sorted(((a.get("id"), a.get("updated_at"), a.get("was_cancelled")) for a in task.get("annotations") or []),
                  key=str)


def _newest(tasks: list[dict], default: float) -> float:
    """The newest ``updated_at`` among ``tasks`` (Label Studio's clock, never ours), else ``default``."""
    stamps = [s for t in tasks if (s := parse_ls_time(t.get("updated_at"))) is not None]
    return max([default, *stamps])
