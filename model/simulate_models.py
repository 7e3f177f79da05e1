"""Models the offline simulation can retrain each round: the project's own, and the CRF anchor.

* ``tagger``  - ``model.ner.tagger.NERTagger`` (the BiLSTM-CRF the backend serves).
* ``crf``     - the paper-anchor baseline of ``shared/README.md``: sklearn-crfsuite, word-shape and
  +-2 context features, c1 = c2 = 0.1, 100 iterations. It is here so a simulation can reproduce
  the published reference figures (least confidence on hau: 95 % of full F1 at ~19 % of labels)
  in the same run as the tagger, rather than quoting them.
* ``textcat`` - ``model.textcat.classifier.TextClassifier`` for MasakhaNEWS-style data.

Every model exposes what :meth:`ModelOutputs.from_tagger` / ``from_classifier`` read.
"""
from __future__ import annotations

import functools
import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["CRFTagger", "make_model", "MODEL_KINDS", "Data", "load_data", "evaluate"]

MODEL_KINDS = ("crf", "tagger", "textcat")


@dataclass
class Data:
    task: str                      # "ner" or "textcat"
    X: list                        # pool inputs: token lists (ner) or texts (textcat)
    Y: list                        # gold: tag lists (ner) or [label] lists (textcat)
    X_test: list
    Y_test: list
    labels: list[str] = field(default_factory=list)
    # labelled corpora of *other* languages/projects: in every training set, never in the pool,
    # never counted as labels bought (cross-lingual transfer; see ``load_aux``)
    X_aux: list = field(default_factory=list)
    Y_aux: list = field(default_factory=list)


def load_data(task: str, path: str | Path, max_pool: int | None = None,
              max_test: int | None = None, seed: int = 0) -> Data:
    """Train split = the pool, test split = evaluation; optional seeded subsampling of both."""
    from model.conll import read_conll, read_news_tsv
    path = Path(path)
    if task == "ner":
        tr, te = read_conll(path / "train.txt"), read_conll(path / "test.txt")
        X, Y = [s[0] for s in tr], [s[1] for s in tr]
        Xt, Yt = [s[0] for s in te], [s[1] for s in te]
        labels = sorted({t[2:] for y in Y for t in y if t != "O"})
    elif task == "textcat":
        X, y = read_news_tsv(path / "train.tsv")
        Xt, yt = read_news_tsv(path / "test.tsv")
        Y, Yt, labels = [[v] for v in y], [[v] for v in yt], sorted(set(y))
    else:
        raise ValueError(f"unknown task {task!r}; expected one of ['ner', 'textcat']")
    rng = np.random.default_rng(seed)
    if max_pool and max_pool < len(X):
        keep = np.sort(rng.choice(len(X), max_pool, replace=False))
        X, Y = [X[i] for i in keep], [Y[i] for i in keep]
    if max_test and max_test < len(Xt):
        keep = np.sort(rng.choice(len(Xt), max_test, replace=False))
        Xt, Yt = [Xt[i] for i in keep], [Yt[i] for i in keep]
    return Data(task, X, Y, Xt, Yt, labels)


def load_aux(data: Data, paths: Sequence[str | Path], max_sentences: int | None = None) -> Data:
    """Add auxiliary labelled corpora (``model.conll.read_aux_corpora``: types the pool lacks
    become O) to ``data``: trained on every round, never in the pool, never counted as labels."""
    from model.conll import read_aux_corpora
    if data.task != "ner":
        raise ValueError("auxiliary corpora are supported for NER (CoNLL) only")
    X, Y = read_aux_corpora(paths, data.labels, max_sentences)
    data.X_aux += X
    data.Y_aux += Y
    return data


def evaluate(data: Data, model: Any) -> dict[str, float]:
    """NER: seqeval entity F1 + paper's entity-token accuracy; textcat: macro-F1 + accuracy."""
    if data.task == "ner":
        from seqeval.metrics import f1_score
        pred = model.predict(data.X_test)
        gold_ent = [(p, g) for ps, gs in zip(pred, data.Y_test) for p, g in zip(ps, gs) if g != "O"]
        acc = float(np.mean([p == g for p, g in gold_ent])) if gold_ent else 0.0
        return {"f1": float(f1_score(data.Y_test, pred)), "entity_token_acc": acc}
    from sklearn.metrics import accuracy_score, f1_score as sk_f1
    pred = [p[0] if isinstance(p, (list, tuple)) else p for p in model.predict(data.X_test)]
    gold = [y[0] for y in data.Y_test]
    return {"f1": float(sk_f1(gold, pred, average="macro")),
            "entity_token_acc": float(accuracy_score(gold, pred))}


def _shape(w: str) -> str:
    out = []
    for c in w:
        s = "X" if c.isupper() else "x" if c.isalpha() else "d" if c.isdigit() else c
        if not out or out[-1] != s:
            out.append(s)
    return "".join(out)[:6]


CLUSTER_SIZES = (16, 64, 256)


@functools.lru_cache(maxsize=4)
def word_clusters(conll_path: str, dim: int = 50, min_count: int = 2, seed: int = 0) -> dict[str, tuple[int, ...]]:
    """Distributional word classes learnt from raw text (the tags of ``conll_path`` are ignored):
    counts of each word's left and right neighbours -> PPMI -> truncated SVD -> k-means at several
    granularities (``CLUSTER_SIZES``), the cheap cousin of the Brown clusters classic NER taggers
    use. Why: in active learning the whole pool's text is there before any label is, and word
    classes let a CRF trained on 300 sentences generalise to names it has never seen labelled.
    """
    from collections import Counter

    from scipy import sparse
    from sklearn.cluster import MiniBatchKMeans
    from sklearn.decomposition import TruncatedSVD
    from sklearn.preprocessing import normalize

    from model.conll import read_conll

    sents = [[w.lower() for w in toks] for toks, _ in read_conll(Path(conll_path))]
    counts = Counter(w for s in sents for w in s)
    vocab = {w: i for i, w in enumerate(w for w, c in counts.most_common() if c >= min_count)}
    ctx = {w: i for i, w in enumerate(w for w, _ in counts.most_common(2000))}
    rows, cols = [], []
    for s in sents:
        padded = ["<s>", *s, "</s>"]
        for k in range(1, len(padded) - 1):
            r = vocab.get(padded[k])
            if r is None:
                continue
            for side, nb in ((0, padded[k - 1]), (1, padded[k + 1])):
                c = ctx.get(nb, len(ctx))  # rare neighbours share one column per side
                rows.append(r)
                cols.append(side * (len(ctx) + 1) + c)
    m = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(vocab), 2 * (len(ctx) + 1)))
    total = m.sum()
    pw, pc = np.asarray(m.sum(1)).ravel() / total, np.asarray(m.sum(0)).ravel() / total
    m = m.tocoo()
    pmi = np.log(m.data / total / (pw[m.row] * pc[m.col]))
    keep = pmi > 0
    ppmi = sparse.csr_matrix((pmi[keep], (m.row[keep], m.col[keep])), shape=m.shape)
    vecs = normalize(TruncatedSVD(min(dim, min(ppmi.shape) - 1), random_state=seed).fit_transform(ppmi))
    labels = [MiniBatchKMeans(min(k, len(vocab)), random_state=seed, n_init=3).fit_predict(vecs)
              for k in CLUSTER_SIZES]
    return {w: tuple(int(lab[i]) for lab in labels) for w, i in vocab.items()}


def _token_features(sent: Sequence[str], i: int, clusters: dict | None = None) -> dict[str, Any]:
    w = sent[i]
    f: dict[str, Any] = {"bias": 1.0, "w": w.lower(), "suf3": w[-3:].lower(), "pre3": w[:3].lower(),
                         "shape": _shape(w), "title": w[:1].isupper(), "upper": w.isupper(),
                         "digit": any(c.isdigit() for c in w)}
    for d in (-2, -1, 1, 2):
        j = i + d
        if 0 <= j < len(sent):
            f[f"{d}:w"] = sent[j].lower()
            f[f"{d}:shape"] = _shape(sent[j])
            f[f"{d}:title"] = sent[j][:1].isupper()
        else:
            f[f"{d}:pad"] = True
    if clusters is not None:
        for d in (-1, 0, 1):
            j = i + d
            if 0 <= j < len(sent) and (cl := clusters.get(sent[j].lower())) is not None:
                for k, c in zip(CLUSTER_SIZES, cl):
                    f[f"{d}:c{k}"] = str(c)
    return f


class CRFTagger:
    """sklearn-crfsuite CRF with the same inference methods as ``NERTagger``.

    Features of a sentence are computed once per process and cached (the pool is re-scored every
    round, and every round's model is a new instance).
    """

    def __init__(self, c1: float = 0.1, c2: float = 0.1, max_iterations: int = 100,
                 embed_dim: int = 256, cluster_text: str | None = None):
        self.c1 = c1
        self.c2 = c2
        self.max_iterations = max_iterations
        self.embed_dim = embed_dim
        self.cluster_text = cluster_text  # CoNLL file whose raw text gives word clusters (tags unused)
        self._feats = self._FEATURES.setdefault(str(cluster_text), {})

    # features of a sentence depend only on it and the clusters: shared by every CRFTagger of the
    # process, so the model retrained each round does not rebuild them for the whole pool and
    # the auxiliary corpora (in a 20,000-sentence transfer run that was half of each round)
    _FEATURES: dict[str, dict[tuple[str, ...], list[dict[str, Any]]]] = {}
    # a bound, so a long-lived process cannot grow it forever: a simulation's pool + test +
    # auxiliary corpora (~30,000 sentences in the transfer suites) fit well under it
    _MAX_CACHED = 100_000

    def _f(self, sent: Sequence[str]) -> list[dict[str, Any]]:
        key = tuple(sent)
        if key not in self._feats:
            if len(self._feats) >= self._MAX_CACHED:
                self._feats.clear()
            cl = word_clusters(str(self.cluster_text)) if self.cluster_text else None
            self._feats[key] = [_token_features(key, i, cl) for i in range(len(key))]
        return self._feats[key]

    def fit(self, X: Sequence[Sequence[str]], y: Sequence[Sequence[str]]) -> CRFTagger:
        import sklearn_crfsuite
        keep = [i for i in range(len(X)) if len(X[i])]
        self.crf_ = sklearn_crfsuite.CRF(algorithm="lbfgs", c1=self.c1, c2=self.c2,
                                         max_iterations=self.max_iterations,
                                         all_possible_transitions=True)
        self.crf_.fit([self._f(X[i]) for i in keep], [list(y[i]) for i in keep])
        self.tags_ = ["O"] + sorted(t for t in self.crf_.classes_ if t != "O")
        return self

    def _decode(self, X: Sequence[Sequence[str]]) -> list[tuple[list[str], np.ndarray, float]]:
        """One crfsuite pass per sentence: Viterbi tags, marginals (tags_ order), log P(path)."""
        tagger = self.crf_.tagger_
        out = []
        for sent in X:
            if not len(sent):
                out.append(([], np.zeros((0, len(self.tags_))), 0.0))
                continue
            tagger.set(self._f(sent))
            path = list(tagger.tag())
            marg = np.array([[tagger.marginal(t, i) for t in self.tags_]
                             for i in range(len(sent))])
            out.append((path, marg, math.log(max(tagger.probability(path), 1e-300))))
        return out

    def predict(self, X):
        return [p for p, _, _ in self._decode(X)]

    def predict_marginals(self, X):
        return [m for _, m, _ in self._decode(X)]

    def sequence_log_proba(self, X):
        return np.array([lp for _, _, lp in self._decode(X)])

    def predict_spans(self, X):
        from model.ner.spans import bio_entities
        out = []
        for path, marg, _ in self._decode(X):
            idx = {t: k for k, t in enumerate(self.tags_)}
            out.append([(a, b, lab, float(np.mean([marg[i, idx[path[i]]] for i in range(a, b)])))
                        for a, b, lab in bio_entities(path)])
        return out

    def embed(self, X) -> np.ndarray:
        """Hashed bag of lowercased words and 3-char suffixes, L2-normalised (for diversity)."""
        out = np.zeros((len(X), self.embed_dim))
        for r, sent in enumerate(X):
            for w in sent:
                for key in (w.lower(), "~" + w[-3:].lower()):
                    out[r, zlib.crc32(key.encode()) % self.embed_dim] += 1.0
        norm = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norm > 0, norm, 1.0)


def make_model(kind: str, seed: int = 0, **params: Any) -> Any:
    """A fresh, unfitted model of ``kind`` (retrained from scratch every round)."""
    if kind == "crf":
        return CRFTagger(**params)
    if kind == "tagger":
        from model.ner.tagger import NERTagger
        return NERTagger(seed=seed, **params)
    if kind == "textcat":
        from model.textcat.classifier import TextClassifier
        try:
            return TextClassifier(seed=seed, **params)
        except TypeError:
            return TextClassifier(**params)
    raise ValueError(f"unknown model kind {kind!r}; expected one of {list(MODEL_KINDS)}")
