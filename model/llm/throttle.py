"""How hard to push an LLM server: adaptive concurrency and a circuit breaker (thread-safe).

``AdaptiveConcurrency`` (additive increase, multiplicative decrease): requests in flight start at
one and grow by one per success up to ``LLM_CONCURRENCY`` (slow start); a timeout, a 429 or a
reply slower than half the timeout halves the limit (never below one), after which it grows by
``1/limit`` per success. A single-slot local server (llama.cpp, one GPU) is therefore not
flooded with requests that queue past the client's timeout and are then retried, adding load,
while a cloud API still reaches the configured concurrency after a few replies.

``CircuitBreaker``: after ``LLM_BREAKER_FAILURES`` consecutive connection failures or timeouts
(attempts, not requests) no call is made for ``LLM_BREAKER_COOLDOWN_S`` seconds; then one trial
call is let through. With the endpoint down, /predict falls back to the local model at once and
a bulk run stops instead of trying every sentence five times.
"""
from __future__ import annotations

import threading
import time


class AdaptiveConcurrency:
    def __init__(self, maximum: int) -> None:
        self.maximum = max(1, int(maximum))
        self.limit = 1.0
        self.in_flight = 0
        self.slow_start = True
        self._cond = threading.Condition()

    def acquire(self) -> None:
        with self._cond:
            while self.in_flight >= max(1, int(self.limit)):
                self._cond.wait()
            self.in_flight += 1

    def release(self, overloaded: bool, answered: bool = True) -> None:
        """``overloaded``: a timeout, 429 or slow reply; ``answered`` False: an error reply
        (neither grows nor shrinks the limit)."""
        with self._cond:
            self.in_flight -= 1
            if not answered and not overloaded:
                pass
            elif overloaded:
                self.limit = max(1.0, self.limit / 2)
                self.slow_start = False
            elif self.slow_start:
                self.limit = min(self.maximum, self.limit + 1)
            else:
                self.limit = min(float(self.maximum), self.limit + 1 / self.limit)
            self._cond.notify_all()


class CircuitOpen(Exception):
    """Raised by ``CircuitBreaker.check`` while the breaker is open."""


class CircuitBreaker:
    def __init__(self, failures: int, cooldown_s: float) -> None:
        self.failures, self.cooldown_s = max(1, failures), cooldown_s
        self._count = 0
        self._open_until = 0.0
        self._trial = False
        self._lock = threading.Lock()

    def check(self) -> None:
        """Let a call through, or raise ``CircuitOpen`` with the seconds left."""
        with self._lock:
            now = time.monotonic()
            if self._count < self.failures:
                return
            if now < self._open_until or self._trial:
                raise CircuitOpen(max(0.0, self._open_until - now))
            self._trial = True  # half-open: one call decides

    def success(self) -> None:
        with self._lock:
            self._count, self._trial = 0, False

    def failure(self) -> None:
        with self._lock:
            self._count += 1
            self._trial = False
            if self._count >= self.failures:
                self._open_until = time.monotonic() + self.cooldown_s

    @property
    def is_open(self) -> bool:
        with self._lock:
            return self._count >= self.failures and time.monotonic() < self._open_until
