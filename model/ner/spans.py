"""BIO helpers and the exact probability of an entity span under a linear-chain CRF.

Why an exact span probability instead of the product or the minimum of token marginals: the
product double-counts correlated tokens (a 4-token name is not 4 independent decisions) and the
minimum ignores the boundaries. What Label Studio shows as the region score, and what a span-level
active-learning strategy should rank, is P(the tags on [i, j) are B-X I-X ... I-X and the tag at j
is not I-X | sentence). Forward-backward gives that in O(span length x tags).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def repair_bio(tags: Sequence[str]) -> list[str]:
    """Make a BIO sequence valid the way seqeval reads it: an I-X that does not continue an X
    entity starts one (becomes B-X)."""
    out: list[str] = []
    prev = "O"
    for tag in tags:
        if tag.startswith("I-") and prev[2:] != tag[2:]:
            tag = "B-" + tag[2:]
        out.append(tag)
        prev = tag
    return out


def bio_entities(tags: Sequence[str]) -> list[tuple[int, int, str]]:
    """(first, last_exclusive, label) of each entity in a valid BIO sequence."""
    spans: list[tuple[int, int, str]] = []
    start, label = None, None
    for k, tag in enumerate(list(tags) + ["O"]):
        if start is not None and not (tag.startswith("I-") and tag[2:] == label):
            spans.append((start, k, label))
            start, label = None, None
        if tag.startswith("B-") or (tag.startswith("I-") and start is None):
            start, label = k, tag[2:]
    return spans


def _logsumexp(x: np.ndarray) -> float:
    m = float(x.max())  # the method, not np.max: this runs once per predicted entity
    return m + float(np.log(np.exp(x - m).sum()))


def span_probability(first: int, last: int, b_idx: int, i_idx: int, alpha: np.ndarray,
                     beta: np.ndarray, emissions: np.ndarray, trans: np.ndarray,
                     end: np.ndarray, log_z: float) -> float:
    """P(tags[first] = B, tags[first+1:last] = I, tags[last] != I) from forward-backward tables.

    ``alpha[t]`` includes the emission at t, ``beta[t]`` is everything after t; ``trans`` and
    ``end`` include the BIO penalties, so probabilities of invalid continuations are zero.
    """
    n = emissions.shape[0]
    score = alpha[first, b_idx]
    prev = b_idx
    for t in range(first + 1, last):
        score += trans[prev, i_idx] + emissions[t, i_idx]
        prev = i_idx
    if last == n:
        score += end[prev]
    else:
        nxt = trans[prev] + emissions[last] + beta[last]
        nxt[i_idx] = -np.inf  # every continuation but I-X
        score += _logsumexp(nxt)
    return float(min(1.0, np.exp(score - log_z)))
