"""Random sampling and diversity-aware batch selection.

Why a diversity step: the top-100 sentences by uncertainty are often near-duplicates (the same
wire story in ten variants, ten sentences about one unknown name). Labelling all of them teaches
the model one thing. :class:`DiverseBatch` takes a larger candidate set from another strategy's
ranking (``candidates`` x n) and spreads the batch over it in embedding space, either by k-means
(one item per cluster: the most useful one) or by greedy core-set / k-center selection
(Sener & Savarese 2018: the candidate farthest from everything labelled or already chosen).
"""
from __future__ import annotations

import numpy as np

from model.active.base import QueryStrategy, validate_pool
from model.active.outputs import ModelOutputs

__all__ = ["RandomSampling", "DiverseBatch"]


class RandomSampling(QueryStrategy):
    """Uniform random order: the baseline every active-learning curve must beat."""

    name = "random"

    def __init__(self, seed: int = 0):
        self.seed = seed

    def scores(self, outputs: ModelOutputs) -> np.ndarray:
        return np.random.default_rng(self.seed).random(outputs.n)

    def query(self, outputs, indices_unlabeled, n, indices_labeled=None, rng=None) -> np.ndarray:
        pool = validate_pool(indices_unlabeled, n, outputs.n)
        rng = rng if rng is not None else np.random.default_rng(self.seed)
        return rng.choice(pool, size=n, replace=False)


def _normalise(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norm > 0, norm, 1.0)


def _sq_dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.maximum((a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T, 0.0)


def _kmeans_pick(emb: np.ndarray, usefulness: np.ndarray, n: int,
                 rng: np.random.Generator, iters: int = 20) -> np.ndarray:
    """Indices (into ``emb``) of the most useful item in each of ``n`` k-means clusters."""
    centers = emb[_kmeanspp(emb, n, rng)]
    for _ in range(iters):
        assign = _sq_dist(emb, centers).argmin(axis=1)
        new = np.stack([emb[assign == k].mean(0) if np.any(assign == k) else centers[k]
                        for k in range(n)])
        if np.allclose(new, centers):
            break
        centers = new
    assign = _sq_dist(emb, centers).argmin(axis=1)
    picked: list[int] = []
    for k in range(n):
        members = np.flatnonzero(assign == k)
        if members.size:
            picked.append(int(members[np.argmax(usefulness[members])]))
    # empty clusters (duplicate points): fill with the most useful items not yet taken
    taken = set(picked)
    rest = [int(i) for i in np.argsort(-usefulness, kind="stable") if int(i) not in taken]
    return np.array(picked + rest[: n - len(picked)], dtype=np.int64)


def _kmeanspp(emb: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    chosen = [int(rng.integers(emb.shape[0]))]
    d = _sq_dist(emb, emb[chosen]).min(axis=1)
    for _ in range(1, k):
        total = d.sum()
        nxt = int(rng.choice(emb.shape[0], p=d / total)) if total > 0 else int(np.argmax(d))
        chosen.append(nxt)
        d = np.minimum(d, _sq_dist(emb, emb[[nxt]])[:, 0])
    return np.array(chosen)


def _coreset_pick(emb: np.ndarray, labelled: np.ndarray, n: int) -> np.ndarray:
    """Greedy k-center: repeatedly take the candidate farthest from labelled + chosen items.

    Without a labelled set the first pick is position 0 (the base strategy's most useful item).
    """
    d = np.full(emb.shape[0], np.inf)
    for s in range(0, labelled.shape[0], 2048):  # bounded memory for large labelled sets
        d = np.minimum(d, _sq_dist(emb, labelled[s:s + 2048]).min(axis=1))
    picked: list[int] = []
    for _ in range(n):
        i = 0 if not picked and labelled.shape[0] == 0 else int(np.argmax(d))
        picked.append(i)
        d = np.minimum(d, _sq_dist(emb, emb[[i]])[:, 0])
        d[picked] = -np.inf
    return np.array(picked, dtype=np.int64)


class DiverseBatch(QueryStrategy):
    """Wraps ``base``: takes its ``candidates * n`` most useful items, then a diverse ``n`` of them.

    ``method="kmeans"`` clusters the candidates into n groups and takes each group's most useful
    item; ``"coreset"`` takes candidates greedily farthest from the labelled set (needs
    ``indices_labeled``) and from each other. Embeddings are L2-normalised (cosine geometry).

    ``scores`` - what the Label Studio queue sees - is the base usefulness with one diverse batch
    of ``queue_batch`` items moved to the front, so the first tasks an annotator is served are
    spread out as well.
    """

    name = "diverse"

    def __init__(self, base: QueryStrategy, method: str = "kmeans", candidates: int = 5,
                 queue_batch: int = 20, seed: int = 0):
        self.base = base
        self.method = method
        self.candidates = candidates
        self.queue_batch = queue_batch
        self.seed = seed

    @property
    def uses_llm_predictions(self) -> bool:  # what the base strategy reads, the batch reads
        return self.base.uses_llm_predictions

    @property
    def requires(self) -> frozenset[str]:  # type: ignore[override]
        return self.base.requires

    def query(self, outputs, indices_unlabeled, n, indices_labeled=None, rng=None) -> np.ndarray:
        if self.method not in ("kmeans", "coreset"):
            raise ValueError(f"unknown method {self.method!r}; expected one of ['kmeans', 'coreset']")
        pool = validate_pool(indices_unlabeled, n, outputs.n)
        rng = rng if rng is not None else np.random.default_rng(self.seed)
        ranked = self.base.query(outputs, pool, min(pool.size, max(n, self.candidates * n)),
                                 indices_labeled, rng)
        if ranked.size == n:
            return ranked
        emb = _normalise(outputs.embeddings)
        cand_emb = emb[ranked]
        if self.method == "kmeans":
            useful = self.base.cached_scores(outputs)[ranked]
            local = _kmeans_pick(cand_emb, useful, n, rng)
        else:
            lab = np.asarray(indices_labeled if indices_labeled is not None else [], dtype=np.int64)
            lab = lab[(lab >= 0) & (lab < outputs.n)]
            local = _coreset_pick(cand_emb, emb[lab], n)
        return ranked[local]

    def scores(self, outputs: ModelOutputs) -> np.ndarray:
        base = self.base.cached_scores(outputs)
        k = min(self.queue_batch, outputs.n)
        if k < 1:
            return base
        batch = self.query(outputs, np.arange(outputs.n), k)
        top = base.max() if np.isfinite(base).any() else 0.0
        out = base.copy()
        out[batch] = top + 1.0 + np.arange(k, 0, -1, dtype=np.float64)  # batch order preserved
        return out
