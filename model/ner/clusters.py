"""Word classes learnt from a project's raw text, for the served CRF and tagger.

Why: in active learning the whole pool's text is there before any label is. Words that occur in
the same contexts ("Kano", "Kaduna", "Abuja" after "a jihar") get the same class, so a model
trained on 300 labelled sentences generalises to names it has never seen labelled. The recipe is
the cheap cousin of the Brown clusters classic NER taggers use: counts of each word's left and
right neighbours -> PPMI -> truncated SVD -> k-means at several granularities (``SIZES``).

Learning is independent of the order the texts come in (sentences are sorted first, ties broken
by the word), so the backend (annotated + unlabelled tasks, in Label Studio's order) and the
simulation (labelled + pool, in index order) learn the same classes from the same texts.

``ClusterCache`` keeps one set per project on disk: a retrain reuses it until the project's text
has grown by ``REFRESH_GROWTH`` (or changed and shrunk), so most retrains pay nothing; every model
version stores the classes it was trained with (see the taggers' ``save``), so a version predicts
identically after a restart even when the cache has moved on.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from model.ner.features import word_key

SIZES = (16, 64, 256)   # k-means granularities: coarse classes generalise, fine ones separate
REFRESH_GROWTH = 0.2    # relearn once the project's text has grown by this fraction
FORMAT = "word-clusters/1"


def _canonical(sentences: Sequence[Sequence[str]]) -> list[tuple[str, ...]]:
    """Normalised word keys per sentence, non-empty sentences only, in sorted order."""
    return sorted(tuple(word_key(w) for w in s) for s in sentences if len(s))


def texts_digest(sentences: Sequence[Sequence[str]]) -> str:
    """Order-independent fingerprint of the texts the classes are learnt from."""
    h = hashlib.sha256()
    for s in _canonical(sentences):
        h.update("\u241f".join(s).encode("utf-8"))
        h.update(b"\n")
    return h.hexdigest()[:32]


class WordClusters:
    """word key -> one class id per granularity of ``SIZES``; JSON-serialisable."""

    def __init__(self, classes: dict[str, tuple[int, ...]], digest: str, n_sentences: int):
        self.classes = classes
        self.digest = digest            # texts_digest of what they were learnt from
        self.n_sentences = n_sentences  # how many (non-empty) sentences that was

    def get(self, word: str) -> tuple[int, ...] | None:
        return self.classes.get(word_key(word))

    def __len__(self) -> int:
        return len(self.classes)

    def to_json(self) -> dict:
        return {"format": FORMAT, "sizes": list(SIZES), "digest": self.digest,
                "n_sentences": self.n_sentences,
                "classes": {w: list(c) for w, c in self.classes.items()}}

    @classmethod
    def from_json(cls, d: dict) -> "WordClusters":
        if d.get("format") != FORMAT or list(d.get("sizes", ())) != list(SIZES):
            raise ValueError(f"word clusters of format {d.get('format')!r} / sizes {d.get('sizes')} "
                             f"are not supported (expected {FORMAT!r} / {list(SIZES)})")
        return cls({w: tuple(c) for w, c in d["classes"].items()}, d["digest"], int(d["n_sentences"]))


def learn_clusters(sentences: Sequence[Sequence[str]], dim: int = 50, min_count: int = 2,
                   n_context: int = 2000, seed: int = 0) -> WordClusters:
    """PPMI-SVD-k-means word classes of ``sentences`` (token lists; no labels needed)."""
    from scipy import sparse
    from sklearn.cluster import MiniBatchKMeans
    from sklearn.decomposition import TruncatedSVD
    from sklearn.preprocessing import normalize

    sents = _canonical(sentences)
    digest = texts_digest(sentences)
    counts = Counter(w for s in sents for w in s)
    ranked = sorted(counts, key=lambda w: (-counts[w], w))
    vocab = {w: i for i, w in enumerate(w for w in ranked if counts[w] >= min_count)}
    if len(vocab) < 4:  # too little text to learn anything: no classes, the models still work
        return WordClusters({}, digest, len(sents))
    ctx = {w: i for i, w in enumerate(ranked[:n_context])}
    rows, cols = [], []
    for s in sents:
        padded = ["<s>", *s, "</s>"]
        for k in range(1, len(padded) - 1):
            r = vocab.get(padded[k])
            if r is None:
                continue
            for side, nb in ((0, padded[k - 1]), (1, padded[k + 1])):
                rows.append(r)  # rare neighbours share one column per side
                cols.append(side * (len(ctx) + 1) + ctx.get(nb, len(ctx)))
    m = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(vocab), 2 * (len(ctx) + 1)))
    total = m.sum()
    pw, pc = np.asarray(m.sum(1)).ravel() / total, np.asarray(m.sum(0)).ravel() / total
    m = m.tocoo()
    pmi = np.log(m.data / total / (pw[m.row] * pc[m.col]))
    keep = pmi > 0
    ppmi = sparse.csr_matrix((pmi[keep], (m.row[keep], m.col[keep])), shape=m.shape)
    vecs = normalize(TruncatedSVD(max(1, min(dim, min(ppmi.shape) - 1)),
                                  random_state=seed).fit_transform(ppmi))
    labels = [MiniBatchKMeans(min(k, len(vocab)), random_state=seed, n_init=3).fit_predict(vecs)
              for k in SIZES]
    return WordClusters({w: tuple(int(lab[i]) for lab in labels) for w, i in vocab.items()},
                        digest, len(sents))


class ClusterCache:
    """One project's word classes on disk (``directory/clusters.json``), reused across retrains.

    ``get`` returns the cached classes when they were learnt from the same texts, or when the
    texts have grown by less than ``REFRESH_GROWTH`` (new tasks are mostly words the classes
    already cover; relearning on every retrain would cost seconds each time for nothing);
    otherwise it learns them again and replaces the file atomically. ``last_`` says which
    happened and how long it took (recorded in the version's metrics).
    """

    def __init__(self, directory: str | Path | None, growth: float = REFRESH_GROWTH):
        self.directory = None if directory is None else Path(directory)
        self.growth = growth
        self.last_: dict = {}

    @property
    def path(self) -> Path | None:
        return None if self.directory is None else self.directory / "clusters.json"

    def _read(self) -> WordClusters | None:
        p = self.path
        if p is None or not p.is_file():
            return None
        try:
            return WordClusters.from_json(json.loads(p.read_text(encoding="utf-8")))
        except (ValueError, KeyError, TypeError):  # a stale or foreign file is relearnt, not fatal
            return None

    def _write(self, wc: WordClusters) -> None:
        assert self.directory is not None
        self.directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".clusters-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(wc.to_json(), f, ensure_ascii=False)
        os.replace(tmp, self.path)

    def get(self, sentences: Sequence[Sequence[str]] | Callable[[], Sequence[Sequence[str]]],
            n: int | None = None) -> WordClusters:
        """The project's classes for ``sentences`` (token lists, or a function listing them). With
        ``n`` (how many there are) the listing is skipped when the cached classes are fresh for
        that many: a retrain of a 10,000-task project then reads no task texts at all."""
        t0 = time.perf_counter()
        cached = _MEMORY.get(str(self.path)) if self.path is not None else None
        cached = cached or self._read()

        def fresh(count: int) -> bool:
            return cached is not None and cached.n_sentences <= count <= cached.n_sentences * (1 + self.growth)

        if n is None or not fresh(n):
            if callable(sentences):
                sentences = sentences()
            n = sum(1 for s in sentences if len(s))
        if cached is not None and (fresh(n) or (not callable(sentences)
                                                and cached.digest == texts_digest(sentences))):
            self.last_ = {"clusters": "cached", "cluster_sentences": cached.n_sentences,
                          "cluster_seconds": round(time.perf_counter() - t0, 3)}
            _remember(self.path, cached)
            return cached
        if callable(sentences):
            sentences = sentences()
        wc = _learn_memo(sentences)
        if self.directory is not None:
            self._write(wc)
            _remember(self.path, wc)
        self.last_ = {"clusters": "learnt", "cluster_sentences": wc.n_sentences,
                      "cluster_seconds": round(time.perf_counter() - t0, 3)}
        return wc


# in-process memo: a simulation retrains on the same pool text every round, and a worker
# retrains the same project many times; bounded so a long-lived process cannot grow it
_MEMORY: dict[str, WordClusters] = {}
_LEARNT: dict[str, WordClusters] = {}
_MAX_MEMO = 8


def _remember(path: Path | None, wc: WordClusters) -> None:
    if path is None:
        return
    if len(_MEMORY) >= _MAX_MEMO and str(path) not in _MEMORY:
        _MEMORY.pop(next(iter(_MEMORY)))
    _MEMORY[str(path)] = wc


def _learn_memo(sentences: Sequence[Sequence[str]]) -> WordClusters:
    digest = texts_digest(sentences)
    if digest not in _LEARNT:
        if len(_LEARNT) >= _MAX_MEMO:
            _LEARNT.pop(next(iter(_LEARNT)))
        _LEARNT[digest] = learn_clusters(sentences)
    return _LEARNT[digest]
