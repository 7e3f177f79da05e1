"""Persistent response cache: one sqlite3 file under the annotator's store directory.

Why sqlite and not one JSON file per response: several processes (gunicorn workers, an rq
worker, the CLI) may annotate at once; sqlite gives atomic writes and file locking for free, and
a killed run loses nothing that was already answered, so a re-run resumes from the cache.

The key is the sha256 of the model, the full message list, the sampling parameters and the
sample index: the prompt template text is inside the messages, so editing a template can never
serve stale answers, and sample k of a self-consistency run is distinct from sample k+1.
"""
from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any


def cache_key(model: str, messages: list[dict], params: dict, sample_index: int) -> str:
    blob = json.dumps({"model": model, "messages": messages, "params": params,
                       "sample": sample_index}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class ResponseCache:
    """``get(key) -> dict | None`` and ``put(key, value)``; values are JSON objects."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
        with self._lock, self._db:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # durable across app crashes
            self._db.execute("CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, "
                             "value TEXT NOT NULL, created REAL NOT NULL)")

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM responses WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, key: str, value: dict[str, Any]) -> None:
        with self._lock, self._db:
            self._db.execute("INSERT OR REPLACE INTO responses VALUES (?, ?, ?)",
                             (key, json.dumps(value, ensure_ascii=False), time.time()))

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()
