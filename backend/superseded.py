"""Bounded predictions: remove this backend's superseded predictions from Label Studio.

Why: every retrain writes a new version's predictions, and Label Studio keeps every older one
(a 1,500-task project held 21,679 predictions after 300 annotations). Its queue only reads the
project's current ``model_version``, so older versions on unlabelled tasks are dead weight that
Label Studio recounts on imports and lists with every task.

What goes, after the new version's predictions are in and the project's model_version is set:
predictions of this backend's local-model versions other than the current one, and LLM
pre-annotations of LLM versions this backend wrote that are no longer the newest LLM one of
their task -- on tasks WITHOUT any annotation only. What stays: everything on annotated tasks
(what the annotator saw, what an annotation was created from: ``parent_prediction``, the inputs of
live agreement), the newest LLM pre-annotation of each task, and every model version this backend
did not write (another backend's, or a user import).

How: the ids of the predictions the backend writes one by one are kept in a ledger in
``MODEL_DIR``, so each retrain checks only those tasks (cost ~ QUEUE_SIZE, not the pool) and
deletes by id. A periodic sweep lists the project's predictions to find the rest (older code's,
those Label Studio stored from /predict, whole-pool imports) and deletes tasks whose predictions
are all superseded in one data-manager request. A failed deletion is logged and left in the
ledger: it never fails the training and is retried at the next one.
"""
from __future__ import annotations

import logging
import time
from collections import defaultdict
from pathlib import Path

from backend.ls_client import LabelStudioClient
from backend.ls_json import LLM_PREFIX, has_annotation
from backend.model_store import ModelStore, read_json, write_json_atomic

log = logging.getLogger(__name__)
FORMAT = 1
BULK_TASKS = 1_000  # task ids per data-manager delete request


class PredictionLedger:
    """What this backend wrote into a project one by one (prediction id -> [task id, version]),
    the candidate-sample rotation and the writes since the last sweep."""

    def __init__(self, store: ModelStore, project_id: int):
        self.store = store
        self.project_id = project_id

    @property
    def path(self) -> Path:
        return self.store.project_dir(self.project_id) / "predictions_written.json"

    def load(self) -> dict:
        data = read_json(self.path, None)
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            data = {"format": FORMAT, "written": {}, "rotation": 0, "writes_since_sweep": None}
        return data

    def save(self, data: dict) -> None:
        write_json_atomic(self.path, data)



def record_llm_version(store: ModelStore, project_id: int, version: str) -> None:
    """Remember that this backend wrote LLM pre-annotations of ``version``: only those are pruned."""
    known = store.project(project_id).get("written_llm_versions") or []
    if version not in known:
        store.save_project(project_id, written_llm_versions=sorted({*known, version}))


def prune(client: LabelStudioClient, store: ModelStore, project_id: int, current: str, ledger: dict,
          sweep: bool) -> dict:
    """Delete superseded predictions (see the module docstring); updates ``ledger`` in place and
    never raises: a failure is logged, counted and retried at the next call."""
    t0 = time.perf_counter()
    out = {"deleted": 0, "kept_annotated": 0, "failed": 0, "sweep": sweep}
    written: dict[str, list] = ledger.setdefault("written", {})
    ours = {v["version"] for v in store.versions(project_id)} | {v for _, v in written.values()}
    llm_ours = set(store.project(project_id).get("written_llm_versions") or [])
    candidates: dict[int, int] = {int(pid): int(tid) for pid, (tid, v) in written.items() if v != current}
    try:
        if sweep:
            candidates.update(_swept(client.list_predictions(project_id), ours, llm_ours, current))
        if not candidates:
            if sweep:
                ledger["writes_since_sweep"] = 0
            return {**out, "seconds": round(time.perf_counter() - t0, 3)}
        by_task: dict[int, set[int]] = defaultdict(set)
        for pid, tid in candidates.items():
            by_task[tid].add(pid)
        tasks = {int(t["id"]): t for t in client.tasks_by_ids(project_id, list(by_task))}
    except Exception as e:  # Label Studio busy or down: the training stands, the next one retries
        log.warning("project %s: could not look up superseded predictions (%s); retried at the next training",
                    project_id, e)
        return {**out, "failed": len(candidates), "error": str(e), "seconds": round(time.perf_counter() - t0, 3)}
    whole: list[int] = []  # tasks whose predictions are all superseded: one bulk request
    single: list[int] = []
    for tid, pids in by_task.items():
        task = tasks.get(tid)
        if task is None:  # task deleted: its predictions went with it
            _forget(written, pids)
            continue
        if has_annotation(task):  # history of an annotated task: kept for good
            out["kept_annotated"] += len(pids)
            _forget(written, pids)
            continue
        present = {int(p["id"]) for p in task.get("predictions") or []}
        _forget(written, pids - present)
        pids &= present
        if pids and pids == present and sweep:
            whole.append(tid)
        else:
            single += sorted(pids)
    for i in range(0, len(whole), BULK_TASKS):
        chunk = whole[i:i + BULK_TASKS]
        try:
            out["deleted"] += client.delete_all_predictions_of(project_id, chunk)
            _forget(written, {p for t in chunk for p in by_task[t]})
        except Exception as e:
            out["failed"] += sum(len(by_task[t]) for t in chunk)
            log.warning("project %s: bulk deletion of superseded predictions failed (%s); retried later", project_id, e)
    for pid in single:
        try:
            out["deleted"] += int(client.delete_prediction(pid))
            _forget(written, {pid})
        except Exception as e:
            out["failed"] += 1
            if out["failed"] == 1:
                log.warning("project %s: deleting prediction %s failed (%s); retried later", project_id, pid, e)
    if sweep and not out["failed"]:
        ledger["writes_since_sweep"] = 0
    out["seconds"] = round(time.perf_counter() - t0, 3)
    if out["deleted"] or out["failed"]:
        log.info("project %s: deleted %d superseded prediction(s) (%d failed, %d on annotated tasks kept) in %.2fs",
                 project_id, out["deleted"], out["failed"], out["kept_annotated"], out["seconds"])
    return out


def _swept(predictions: list[dict], ours: set[str], llm_ours: set[str], current: str) -> dict[int, int]:
    """Prediction id -> task id of the superseded ones among a project's listed predictions."""
    out: dict[int, int] = {}
    llm_by_task: dict[int, list[dict]] = defaultdict(list)
    for p in predictions:
        mv, tid = str(p.get("model_version") or ""), p.get("task")
        if tid is None or p.get("id") is None:
            continue
        if mv.startswith(LLM_PREFIX):
            llm_by_task[int(tid)].append(p)
        elif mv in ours and mv != current:
            out[int(p["id"])] = int(tid)
    for tid, preds in llm_by_task.items():
        newest = max(preds, key=lambda p: (str(p.get("created_at") or ""), int(p["id"])))
        out.update({int(p["id"]): tid for p in preds
                    if p is not newest and str(p.get("model_version")) in llm_ours})
    return out


def _forget(written: dict[str, list], pids) -> None:
    for pid in pids:
        written.pop(str(pid), None)
