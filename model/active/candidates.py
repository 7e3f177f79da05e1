"""The candidates a retrain scores when the pool is too large to score whole (``RESCORE_CANDIDATES``).

Why one definition: the backend reads the candidates as pages of Label Studio's unlabelled
listing, the simulation as slices of its pool in the same (import) order. Both must visit the same
windows in the same seeded order, or a simulated learning curve is not what a project gets: the
windows are contiguous stretches of the listing, and a MasakhaNER file is ordered by article, so
a sample of four windows is topically narrower than a uniform sample of the same size.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Hashable
from typing import TypeVar

import numpy as np

T = TypeVar("T")
SAMPLE_WINDOWS = 4  # listing windows per candidate sample: spread over the pool, 4 requests
SAMPLE_SEED = 0  # the window order's seed: the backend's writer and the simulation both use it


def window_size(candidates: int) -> int:
    """Items per window for a sample of about ``candidates`` items."""
    return max(1, math.ceil(int(candidates) / SAMPLE_WINDOWS))


def sample_windows(read_window: Callable[[int, int], tuple[list[T], int]], candidates: int,
                   rotation: int, total: int, seed: int,
                   key: Callable[[T], Hashable] = lambda x: x) -> tuple[list[T], int, int]:
    """Read ``SAMPLE_WINDOWS`` windows of the unlabelled listing in a seeded order that visits
    every window once per cycle (a cycle = the listing's windows, re-drawn per cycle).

    ``read_window(index, size)`` returns the items of 0-based window ``index`` and the listing's
    total now; ``rotation`` / ``total`` are what the previous call returned (0, 0 the first time).
    Returns the items (first read wins on a duplicate ``key``), the rotation and the total after."""
    size = window_size(candidates)
    out: dict[Hashable, T] = {}
    for _ in range(SAMPLE_WINDOWS):
        known = total > 0
        if known:
            n_windows = math.ceil(total / size)
            cycle, pos = divmod(rotation, n_windows)
            window = int(np.random.default_rng([seed, cycle, n_windows]).permutation(n_windows)[pos])
        else:  # the listing's size is learnt from a first read, which is not a step of the cycle
            window = 0
        items, total = read_window(window, size)
        for x in items:
            out.setdefault(key(x), x)
        rotation += int(known)
        if total <= size * SAMPLE_WINDOWS and len(out) >= total:
            break  # a small pool: all of it is in the sample
    return list(out.values()), rotation, total


def sample_pool(pool: np.ndarray, candidates: int, rotation: int, total: int,
                seed: int = SAMPLE_SEED) -> tuple[list[int], int, int]:
    """``sample_windows`` over an in-memory pool of item indices in listing order (the
    simulation's unlabelled pool), as the backend reads Label Studio's listing."""
    return sample_windows(lambda w, size: (pool[w * size:(w + 1) * size].tolist(), pool.size),
                          candidates, rotation, total, seed)
