"""Seed-set samplers: random, and the paper's entity-rich sampler.

Why entity-rich: a random 100-sentence seed of MasakhaNER holds many sentences without a single
entity; a tagger trained on it learns "everything is O" and its first uncertainty ranking is
meaningless (the reference code's small seeds collapsed to all-O). The paper keeps sentences
whose share of entity tokens lies in [5 %, 50 %] and draws them with weights favouring the middle
of the entity-count ranking - rich in entities but not lists of names.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["entity_rich_sample", "random_sample"]


def random_sample(n_items: int, n: int, rng: np.random.Generator) -> np.ndarray:
    if n > n_items:
        raise ValueError(f"asked for {n} seed items from a pool of {n_items}")
    return rng.choice(n_items, size=n, replace=False)


def entity_rich_sample(tags: Sequence[Sequence[str]], n: int, rng: np.random.Generator,
                       low: float = 0.05, high: float = 0.5) -> np.ndarray:
    """Indices of ``n`` sentences, entity-token share in ``[low, high]``, middle-weighted.

    Eligible sentences are ranked by entity count; the draw weight is triangular over that
    ranking (peak at the median, 1/m floor at the ends so every eligible sentence can be drawn).
    If fewer than ``n`` are eligible, the remainder is drawn at random from the others.
    """
    if n > len(tags):
        raise ValueError(f"asked for {n} seed items from a pool of {len(tags)}")
    lengths = np.array([len(t) for t in tags], dtype=np.float64)
    ent_tok = np.array([sum(tag != "O" for tag in t) for t in tags], dtype=np.float64)
    n_ent = np.array([sum(tag.startswith("B-") or (tag.startswith("I-") and (i == 0 or t[i - 1] == "O"))
                          for i, tag in enumerate(t)) for t in tags])
    share = np.divide(ent_tok, lengths, out=np.zeros_like(ent_tok), where=lengths > 0)
    eligible = np.flatnonzero((share >= low) & (share <= high))
    k = min(n, eligible.size)
    chosen = np.zeros(0, dtype=np.int64)
    if k:
        order = eligible[np.argsort(n_ent[eligible], kind="stable")]
        m = order.size
        q = (np.arange(m) + 0.5) / m
        w = 1.0 - np.abs(2.0 * q - 1.0) + 1.0 / m
        chosen = rng.choice(order, size=k, replace=False, p=w / w.sum())
    if k < n:
        rest = np.setdiff1d(np.arange(len(tags)), chosen)
        chosen = np.concatenate([chosen, rng.choice(rest, size=n - k, replace=False)])
    return chosen.astype(np.int64)
