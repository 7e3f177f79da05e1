"""Samples of gold sentences: the paper's entity-rich sampler, and plain random. One sampler for
the selection run's gold sample and the simulation's seed sets (``model.simulation.loop``).

Why entity-rich: a random MasakhaNER sentence often has no entity at all, and an all-``O``
sentence tells almost nothing about an annotator (every model gets it "right", and chance-
corrected agreement is undefined on it). The paper (Kholodna et al. 2024, reference notebook
``src/data/sample.py``) therefore keeps only sentences whose share of entity tokens is strictly
between 5 % and 50 %, sorts them by their number of entity tokens (most first) and draws without
replacement with weights from a normal curve over the *sorted positions*, centred on the middle
(mu = n/2, sigma = n/4), seed 42. That favours sentences with a typical amount of entities over
the extremes (very long name lists, single-name sentences).

Our documented interpretation of it:
- "entity tokens" = tokens whose gold tag is not ``O``; share = entity tokens / tokens;
- the sort is stable (ties keep file order), so a sample is reproducible from (file, seed) alone;
- the draw uses ``numpy.random.default_rng(seed).choice(..., replace=False, p=weights)`` instead
  of the global legacy ``np.random.seed``; results differ from the notebook's exact indices but
  follow the same distribution, and never touch global random state;
- when fewer sentences qualify than asked for, all qualifying ones are returned (sample order =
  draw order) and the caller is told through ``SampleInfo.shortfall``.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

SAMPLERS = ("entity-rich", "random")


@dataclass(frozen=True)
class SampleInfo:
    """What a sampler did, for the report: how many sentences qualified, were drawn, missing."""

    sampler: str
    seed: int
    pool: int
    eligible: int
    drawn: int
    shortfall: int
    indices: tuple[int, ...]


def entity_share(tags: Sequence[str]) -> float:
    """Share of non-``O`` tokens in one sentence (0.0 for an empty one)."""
    return sum(t != "O" for t in tags) / len(tags) if tags else 0.0


def entity_rich_indices(taggings: Sequence[Sequence[str]], n: int, seed: int = 42,
                        min_share: float = 0.05, max_share: float = 0.5) -> tuple[list[int], int]:
    """Indices of ``n`` entity-rich sentences (see module docstring) and the eligible-pool size."""
    eligible = [i for i, tags in enumerate(taggings) if min_share < entity_share(tags) < max_share]
    counts = np.array([sum(t != "O" for t in taggings[i]) for i in eligible])
    order = np.argsort(-counts, kind="stable")
    ranked = [eligible[k] for k in order]
    m = len(ranked)
    if m == 0:
        return [], 0
    x = np.arange(m)
    mu, sigma = m / 2, max(m / 4, 1e-9)
    weights = np.exp(-((x - mu) ** 2) / (2 * sigma**2))
    weights /= weights.sum()
    # numpy refuses replace=False draws when fewer positions have p > 0 than requested
    take = min(n, m, int((weights > 0).sum()))
    picks = np.random.default_rng(seed).choice(m, size=take, replace=False, p=weights)
    return [ranked[k] for k in picks], m


def random_indices(n_total: int, n: int, seed: int = 42) -> list[int]:
    """``n`` distinct indices drawn uniformly (all of them, shuffled, when ``n >= n_total``)."""
    rng = np.random.default_rng(seed)
    return [int(i) for i in rng.choice(n_total, size=min(n, n_total), replace=False)]


def sample_gold(sentences: Sequence[tuple[Sequence[str], Sequence[str]]], n: int, *,
                sampler: str = "entity-rich", seed: int = 42
                ) -> tuple[list[tuple[list[str], list[str]]], SampleInfo]:
    """Draw ``n`` ``(tokens, tags)`` gold sentences with the named sampler."""
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; expected one of {SAMPLERS}")
    if n < 1:
        raise ValueError("sample size must be >= 1")
    if sampler == "entity-rich":
        idx, eligible = entity_rich_indices([s[1] for s in sentences], n, seed)
    else:
        idx, eligible = random_indices(len(sentences), n, seed), len(sentences)
    sample = [(list(sentences[i][0]), list(sentences[i][1])) for i in idx]
    info = SampleInfo(sampler, seed, len(sentences), eligible, len(idx), n - len(idx),
                      tuple(int(i) for i in idx))
    return sample, info
