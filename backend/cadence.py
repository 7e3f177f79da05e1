"""Retrain cadence: how often annotation events retrain a project.

Why: every submitted annotation used to queue a training. On a large project a fit plus the
re-scoring of the pool takes longer than an annotator needs for the next task, so with coalescing
the project trained back to back for as long as anyone labelled, holding a core and writing a
new set of predictions per click. Two settings bound that:

- ``TRAIN_EVERY_N``: annotation events (created, updated, deleted) needed since the last training
  started before another one is queued. Below that, nothing is queued and ``/webhook`` says so.
- ``TRAIN_MIN_INTERVAL_S``: the least time between the starts of two trainings of a project. A
  trigger inside it is not dropped: it becomes a job that may not start before the interval ends
  (a trailing trigger always trains). ``auto`` = twice the project's last training time, so
  training takes at most about half the wall clock whatever the project's size, and a small
  project (seconds per fit) still retrains at once.

Start Training, ``POST /train`` and ``POST /jobs`` bypass both. State lives in
``MODEL_DIR/projects/<id>/cadence.json`` under the project's file lock, so every server process
and RQ worker sharing ``MODEL_DIR`` counts the same events, and a restart forgets none.
"""
from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass

from backend.jobs import ANNOTATION_EVENTS
from backend.model_store import ModelStore, read_json, write_json_atomic

AUTO = "auto"
AUTO_FACTOR = 2.0


@dataclass(frozen=True)
class Decision:
    waiting: bool  # True: not enough new annotations yet, nothing queued
    not_before: float | None  # when the training may start (None: now)
    detail: str = ""


class Cadence:
    def __init__(self, store: ModelStore, every_n: int = 1, min_interval_s: float | str = AUTO):
        if every_n < 1:
            raise ValueError(f"TRAIN_EVERY_N={every_n}: must be >= 1")
        if min_interval_s != AUTO and float(min_interval_s) < 0:
            raise ValueError(f"TRAIN_MIN_INTERVAL_S={min_interval_s}: must be >= 0 or 'auto'")
        self.store, self.every_n, self.min_interval_s = store, every_n, min_interval_s

    def _path(self, project_id: int):
        return self.store.project_dir(project_id) / "cadence.json"

    def _update(self, project_id: int, fn, durable: bool = True) -> dict:
        """Read-modify-write under the project's cadence lock. Counting events is not durable
        (renamed into place, no fsync): a storm of webhooks must not queue behind a disk flush
        each, and a count lost in a crash costs at most one training earlier or later."""
        with self.store.lock(project_id, "cadence"):
            state = read_json(self._path(project_id), {}) or {}
            fn(state)
            if durable:
                write_json_atomic(self._path(project_id), state)
            else:
                tmp = self._path(project_id).with_name(f".cadence.{os.getpid()}.{threading.get_ident()}.tmp")
                tmp.write_text(json.dumps(state), encoding="utf-8")
                os.replace(tmp, self._path(project_id))
        return state

    def state(self, project_id: int) -> dict:
        return read_json(self._path(project_id), {}) or {}

    def interval(self, state: dict) -> float:
        if self.min_interval_s == AUTO:
            return AUTO_FACTOR * float(state.get("last_seconds") or 0.0)
        return float(self.min_interval_s)

    def note_event(self, project_id: int, reason: str) -> Decision:
        """Count an annotation event (other reasons are forced trainings) and decide."""
        if reason not in ANNOTATION_EVENTS:
            return Decision(False, None)

        def count(s: dict) -> None:
            s["since_last"] = int(s.get("since_last", 0)) + 1

        if self.every_n == 1:  # every event counts enough: nothing to write on the webhook's path
            state = self.state(project_id)
            n = 1
        else:
            state = self._update(project_id, count, durable=False)
            n = state["since_last"]
        if n < self.every_n:
            return Decision(True, None, f"{n}/{self.every_n} new annotations since the last training "
                            "(TRAIN_EVERY_N); Start Training trains now")
        due = float(state.get("last_started") or 0.0) + self.interval(state)
        if due > time.time():
            return Decision(False, due, f"deferred until {self.interval(state):.0f} s after the last "
                            "training started (TRAIN_MIN_INTERVAL_S)")
        return Decision(False, None)

    def started(self, project_id: int) -> None:
        """A training starts: it reads every annotation there is, so the count starts again."""
        def reset(s: dict) -> None:
            s.update(since_last=0, last_started=time.time())

        self._update(project_id, reset)

    def finished(self, project_id: int, seconds: float) -> None:
        """A training ended: its wall time sets the ``auto`` interval."""
        self._update(project_id, lambda s: s.update(last_seconds=round(float(seconds), 3)))


def cadence_from_settings(settings) -> Cadence:
    return Cadence(ModelStore(settings.model_dir), settings.train_every_n, settings.train_min_interval_s)
