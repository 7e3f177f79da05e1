"""Token and cost ledger per project and per model, persistent (sqlite3), with a hard budget.

Every request is one row: real calls with their usage and cost, cache hits with zero tokens and
zero cost (counted apart, so "a re-run cost nothing" is visible). The budget is global over the
ledger file, because it is one account's money whichever project spends it.

Hard budget: a request first *reserves* its worst-case cost (``reserve``: a pending row, written
in one ``BEGIN IMMEDIATE`` transaction with the check, so threads and processes sharing the file
cannot both take the last dollars), then *settles* it (``settle``) with the reported usage, or
with an estimate when the server reports none (``estimated`` = 1 on the row). A row left pending
by a killed process keeps its worst case: the spend is over-counted, never under-counted.
A *scope* (``predict``) can carry its own budget over a rolling window on top of the global one.
A request that does not fit only because others are still pending waits for them to settle
(they usually cost far less than their worst case), up to ``wait_s``; otherwise it is refused.
"""
from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path


class BudgetExceeded(RuntimeError):
    """The configured LLM_BUDGET_USD is spent; no further calls are made."""


class Ledger:
    def __init__(self, path: Path, budget_usd: float = 0.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.budget_usd = float(budget_usd)
        self._lock = threading.Lock()
        self._settled = threading.Condition()
        self._db = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
        with self._lock, self._db:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # durable across app crashes
            self._db.execute("CREATE TABLE IF NOT EXISTS calls (ts REAL, project TEXT, model TEXT,"
                             " tokens_in INTEGER, tokens_out INTEGER, cost_usd REAL,"
                             " cached INTEGER, ok INTEGER)")
            cols = {r[1] for r in self._db.execute("PRAGMA table_info(calls)")}
            for col, decl in (("pending", "INTEGER DEFAULT 0"), ("estimated", "INTEGER DEFAULT 0"),
                              ("scope", "TEXT DEFAULT ''")):
                if col not in cols:  # a ledger written before the hard budget
                    self._db.execute(f"ALTER TABLE calls ADD COLUMN {col} {decl}")

    def record(self, project: str, model: str, tokens_in: int, tokens_out: int,
               cost_usd: float, *, cached: bool = False, ok: bool = True) -> None:
        with self._lock, self._db:
            self._db.execute("INSERT INTO calls (ts, project, model, tokens_in, tokens_out, "
                             "cost_usd, cached, ok) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                             (time.time(), project, model, int(tokens_in), int(tokens_out),
                              float(cost_usd), int(cached), int(ok)))

    def reserve(self, project: str, model: str, worst_usd: float, *, scope: str = "",
                scope_budget_usd: float = 0.0, window_s: float = 86400.0,
                wait_s: float = 120.0) -> int:
        """Book ``worst_usd`` as pending spend, or raise ``BudgetExceeded`` when it does not fit
        in ``LLM_BUDGET_USD`` (or the scope's own budget over the last ``window_s``), even once
        the requests pending now have settled (waited for at most ``wait_s``)."""
        deadline = time.monotonic() + wait_s
        while True:
            try:
                return self._reserve(project, model, worst_usd, scope, scope_budget_usd,
                                     window_s)
            except BudgetExceeded:
                if not self._pending() or time.monotonic() > deadline:
                    raise
                with self._settled:
                    self._settled.wait(0.2)

    def _pending(self) -> bool:
        with self._lock:
            return bool(self._db.execute("SELECT COUNT(*) FROM calls WHERE pending = 1 AND ts > ?",
                                         (time.time() - 3600,)).fetchone()[0])

    def _reserve(self, project: str, model: str, worst_usd: float, scope: str,
                 scope_budget_usd: float, window_s: float) -> int:
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                spent = float(db.execute("SELECT COALESCE(SUM(cost_usd), 0) FROM calls")
                              .fetchone()[0])
                if self.budget_usd > 0 and spent + worst_usd > self.budget_usd:
                    raise BudgetExceeded(
                        f"LLM budget exceeded: spent ${spent:.4f} of LLM_BUDGET_USD="
                        f"${self.budget_usd:.2f} and the next request could cost up to "
                        f"${worst_usd:.4f}; no further LLM calls")
                if scope and scope_budget_usd > 0:
                    used = float(db.execute(
                        "SELECT COALESCE(SUM(cost_usd), 0) FROM calls WHERE scope = ? AND ts > ?",
                        (scope, time.time() - window_s)).fetchone()[0])
                    if used + worst_usd > scope_budget_usd:
                        raise BudgetExceeded(
                            f"LLM budget for {scope} calls exceeded: ${used:.4f} of "
                            f"${scope_budget_usd:.2f} spent in the last {window_s / 3600:g} h; "
                            "no further LLM calls from it for now")
                cur = db.execute("INSERT INTO calls (ts, project, model, tokens_in, tokens_out, "
                                 "cost_usd, cached, ok, pending, estimated, scope) "
                                 "VALUES (?, ?, ?, 0, 0, ?, 0, 1, 1, 0, ?)",
                                 (time.time(), project, model, float(worst_usd), scope))
                db.execute("COMMIT")
                return int(cur.lastrowid)
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def settle(self, row: int, tokens_in: int, tokens_out: int, cost_usd: float, *,
               estimated: bool = False, ok: bool = True) -> None:
        """Replace a reservation by what the request cost (0 for a failed one)."""
        with self._lock, self._db:
            self._db.execute("UPDATE calls SET tokens_in = ?, tokens_out = ?, cost_usd = ?, "
                             "ok = ?, pending = 0, estimated = ? WHERE rowid = ?",
                             (int(tokens_in), int(tokens_out), float(cost_usd), int(ok),
                              int(estimated), row))
        with self._settled:
            self._settled.notify_all()

    def spent(self) -> float:
        with self._lock:
            return float(self._db.execute("SELECT COALESCE(SUM(cost_usd), 0) FROM calls")
                         .fetchone()[0])

    def check_budget(self, next_cost_estimate: float = 0.0) -> None:
        """Raise ``BudgetExceeded`` when the spend (plus the next call's estimate) passes the budget.

        Concurrent requests already in flight may overshoot by at most one request each.
        """
        if self.budget_usd <= 0:
            return
        spent = self.spent()
        if spent + next_cost_estimate > self.budget_usd:
            raise BudgetExceeded(f"LLM budget exceeded: spent ${spent:.4f} of "
                                 f"LLM_BUDGET_USD=${self.budget_usd:.2f}; no further LLM calls")

    def summary(self, project: str | None = None) -> dict:
        where, args = ("WHERE project = ?", (project,)) if project is not None else ("", ())
        q = ("SELECT project, model, SUM(1 - cached), SUM(cached), SUM(1 - ok), "
             "COALESCE(SUM(tokens_in), 0), COALESCE(SUM(tokens_out), 0), "
             "COALESCE(SUM(cost_usd), 0), COALESCE(SUM(estimated), 0), "
             "COALESCE(SUM(CASE WHEN estimated = 1 THEN cost_usd ELSE 0 END), 0), "
             f"COALESCE(SUM(pending), 0) FROM calls {where} GROUP BY project, model")
        with self._lock:
            rows = self._db.execute(q, args).fetchall()
        keys = ("calls", "cache_hits", "failed_calls", "tokens_in", "tokens_out", "cost_usd",
                "estimated_calls", "estimated_cost_usd", "pending_calls")
        zero = {**dict.fromkeys(keys, 0), "cost_usd": 0.0, "estimated_cost_usd": 0.0}
        total = dict(zero)
        by_project: dict[str, dict] = {}
        by_model: dict[str, dict] = {}
        for proj, model, *vals in rows:
            for bucket in (by_project.setdefault(proj, dict(zero)),
                           by_model.setdefault(model, dict(zero)), total):
                for k, v in zip(keys, vals):
                    bucket[k] += v
        for bucket in (total, *by_project.values(), *by_model.values()):
            bucket["cost_usd"] = round(float(bucket["cost_usd"]), 6)
            bucket["estimated_cost_usd"] = round(float(bucket["estimated_cost_usd"]), 6)
        out = {"project": project, **total, "by_model": by_model, "by_project": by_project,
               "budget_usd": self.budget_usd or None}
        if self.budget_usd:
            out["budget_left_usd"] = round(self.budget_usd - self.spent(), 6)
        return out

    def close(self) -> None:
        with self._lock:
            self._db.close()
