"""CRFSuiteTagger: a linear-chain CRF (python-crfsuite) with the same prediction API as NERTagger.

Why serve a CRF: with a few hundred labels a linear model on good features learns faster than a
network, it trains in seconds on one core, and L-BFGS on a convex objective gives the same model
for the same labels, so consecutive versions do not swing the way a network's random restarts do.
With word classes learnt from the project's own raw text (``model.ner.clusters``) it is the model
our active-learning figures come from.

Features: the reference CRF of ``shared/README.md`` (word, affixes, shape, casing, +-2 context;
``benchmarks/crf_baseline.py`` is this class without clusters) plus, with ``clusters``, the class
of the word and its +-1 neighbours at every granularity. L-BFGS, c1 = c2 = 0.1, 100 iterations.

Saved as JSON (tags, hyper-parameters, clusters) beside crfsuite's own model file: no pickle.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.exceptions import NotFittedError

from model.ner.clusters import SIZES, WordClusters
from model.ner.decoding import Decoded
from model.ner.spans import bio_entities, repair_bio
from model.params import merged_params

DEFAULTS: dict = {"c1": 0.1, "c2": 0.1, "max_iterations": 100, "labels": None, "embed_dim": 256}


def _shape(word: str) -> str:
    """Short word shape: runs of the same class collapsed (``Kano`` -> ``Xx``, ``2021`` -> ``d``)."""
    out: list[str] = []
    for c in word:
        k = "X" if c.isupper() else "x" if c.isalpha() else "d" if c.isdigit() else c
        if not out or out[-1] != k:
            out.append(k)
    return "".join(out)


def _word_features(word: str) -> dict[str, object]:
    return {"lower": word.lower(), "suffix3": word[-3:], "suffix2": word[-2:], "prefix3": word[:3],
            "is_upper": word.isupper(), "is_title": word.istitle(), "is_digit": word.isdigit(),
            "has_digit": any(c.isdigit() for c in word), "has_hyphen": "-" in word,
            "shape": _shape(word)}


def sentence_features(sent: Sequence[str], clusters: WordClusters | None = None) -> list[dict[str, object]]:
    """Features of each token: its own, lower/title/upper/shape of the tokens at -2..+2, and with
    ``clusters`` the word classes of the tokens at -1..+1."""
    n = len(sent)
    base = [_word_features(w) for w in sent]
    cl = [clusters.get(w) for w in sent] if clusters is not None and len(clusters) else None
    feats = []
    for i in range(n):
        f: dict[str, object] = {"bias": 1.0, **base[i]}
        for off in (-2, -1, 1, 2):
            j = i + off
            if 0 <= j < n:
                b = base[j]
                f.update({f"{off}:lower": b["lower"], f"{off}:is_title": b["is_title"],
                          f"{off}:is_upper": b["is_upper"], f"{off}:shape": b["shape"]})
            else:
                f[f"{off}:pad"] = True  # sentence boundary (BOS / EOS)
        if cl is not None:
            for off in (-1, 0, 1):
                j = i + off
                if 0 <= j < n and cl[j] is not None:
                    for k, c in zip(SIZES, cl[j]):
                        f[f"{off}:c{k}"] = str(c)
        feats.append(f)
    return feats


class CRFSuiteTagger:
    """``fit(X, y)`` over token lists and BIO tags; ``decode``/``predict``/``predict_marginals``/
    ``sequence_log_proba``/``predict_spans``/``embed`` as NERTagger; ``save``/``load``."""

    # features of a sentence depend only on it and the clusters: shared by every instance of the
    # process (the pool is re-scored every round by a new model); bounded
    _FEATURES: dict[str, dict[tuple[str, ...], list[dict[str, Any]]]] = {}
    _MAX_CACHED = 100_000

    def __init__(self, *, seed: int = 0, clusters: WordClusters | None = None, **hyper):
        self.seed = seed  # unused by L-BFGS (deterministic); kept so every tagger takes one
        self.clusters = clusters
        self.hyper = hyper

    def _params(self) -> dict:
        return merged_params(self.hyper, DEFAULTS)

    def _f(self, sent: Sequence[str]) -> list[dict[str, Any]]:
        cache = self._FEATURES.setdefault(self.clusters.digest if self.clusters is not None else "", {})
        key = tuple(sent)
        feats = cache.get(key)
        if feats is None:
            if len(cache) >= self._MAX_CACHED:
                cache.clear()
            feats = cache[key] = sentence_features(key, self.clusters)
        return feats

    def fit(self, X: Sequence[Sequence[str]], y: Sequence[Sequence[str]]) -> "CRFSuiteTagger":
        import pycrfsuite
        p = self._params()
        if len(X) != len(y):
            raise ValueError(f"X has {len(X)} sentences but y has {len(y)}")
        trainer = pycrfsuite.Trainer(verbose=False)
        types: set[str] = set(p["labels"] or ())
        for k, (xs, ys) in enumerate(zip(X, y)):
            if len(xs) != len(ys):
                raise ValueError(f"sentence {k}: {len(xs)} tokens but {len(ys)} tags")
            if not len(xs):
                continue
            tags = repair_bio(list(ys))
            types |= {t[2:] for t in tags if t != "O"}
            trainer.append(self._f(xs), tags)
        trainer.set_params({"c1": p["c1"], "c2": p["c2"], "max_iterations": p["max_iterations"],
                            "feature.possible_transitions": True})
        fd, path = tempfile.mkstemp(suffix=".crfsuite")
        os.close(fd)
        try:
            trainer.train(path)
            self.model_bytes_ = Path(path).read_bytes()
        finally:
            os.unlink(path)
        self._open()
        # every type of the project, so marginals have one column per tag even for unseen types
        self.tags_ = ["O"] + [f"{bi}-{t}" for t in sorted(types) for bi in ("B", "I")]
        return self

    def _open(self) -> None:
        import pycrfsuite
        self.tagger_ = pycrfsuite.Tagger()
        self.tagger_.open_inmemory(self.model_bytes_)
        self.known_ = set(self.tagger_.labels())

    def _check(self) -> None:
        if not hasattr(self, "tagger_"):
            raise NotFittedError("This CRFSuiteTagger is not fitted yet; call fit first.")

    def _empty(self) -> np.ndarray:
        return np.zeros((0, len(self.tags_)))

    def _decode(self, X: Sequence[Sequence[str]]) -> list[tuple[list[str], np.ndarray, float]]:
        """One crfsuite pass per sentence: Viterbi tags, marginals (tags_ order), log P(path)."""
        self._check()
        tagger, known = self.tagger_, self.known_
        out = []
        for sent in X:
            if not len(sent):
                out.append(([], self._empty(), 0.0))
                continue
            tagger.set(self._f(sent))
            path = list(tagger.tag())
            marg = np.array([[tagger.marginal(t, i) if t in known else 0.0 for t in self.tags_]
                             for i in range(len(sent))])
            out.append((path, marg, math.log(max(tagger.probability(path), 1e-300))))
        return out

    def decode(self, X) -> list[Decoded]:
        """Tags, log p(path), marginals and spans (confidence: mean marginal of the span's tags)."""
        idx = {t: k for k, t in enumerate(self.tags_)}
        out = []
        for path, marg, lp in self._decode(X):
            spans = [(a, b, lab, float(np.mean([marg[i, idx[path[i]]] for i in range(a, b)])))
                     for a, b, lab in bio_entities(path)]
            out.append(Decoded(path, lp, marg, spans))
        return out

    def predict(self, X) -> list[list[str]]:
        """Viterbi tags only (no marginals: evaluation and routing need nothing else)."""
        self._check()
        out = []
        for sent in X:
            if len(sent):
                self.tagger_.set(self._f(sent))
                out.append(list(self.tagger_.tag()))
            else:
                out.append([])
        return out

    def predict_marginals(self, X) -> list[np.ndarray]:
        return [m for _, m, _ in self._decode(X)]

    def sequence_log_proba(self, X) -> np.ndarray:
        return np.array([lp for _, _, lp in self._decode(X)], dtype=np.float64)

    def predict_spans(self, X) -> list[list[tuple[int, int, str, float]]]:
        return [d.spans for d in self.decode(X)]

    def embed(self, X) -> np.ndarray:
        """Hashed bag of lowercased words and 3-char suffixes, L2-normalised (for diversity)."""
        dim = self._params()["embed_dim"]
        out = np.zeros((len(X), dim))
        for r, sent in enumerate(X):
            for w in sent:
                for key in (w.lower(), "~" + w[-3:].lower()):
                    out[r, zlib.crc32(key.encode()) % dim] += 1.0
        norm = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norm > 0, norm, 1.0)

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | Path) -> None:
        self._check()
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        (d / "model.crfsuite").write_bytes(self.model_bytes_)
        meta = {"format": "ner-crfsuite/1", "seed": self.seed, "hyper": self.hyper, "tags": self.tags_,
                "clusters": None if self.clusters is None else self.clusters.to_json()}
        (d / "crf.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, directory: str | Path) -> "CRFSuiteTagger":
        d = Path(directory)
        meta = json.loads((d / "crf.json").read_text(encoding="utf-8"))
        if meta.get("format") != "ner-crfsuite/1":
            raise ValueError(f"{d}: not a saved CRFSuiteTagger (format {meta.get('format')!r})")
        cl = meta.get("clusters")
        obj = cls(seed=meta.get("seed", 0), clusters=None if cl is None else WordClusters.from_json(cl),
                  **meta["hyper"])
        obj.tags_ = list(meta["tags"])
        obj.model_bytes_ = (d / "model.crfsuite").read_bytes()
        obj._open()
        return obj
