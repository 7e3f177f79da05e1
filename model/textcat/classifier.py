"""TextClassifier: hashed character n-gram TF-IDF + logistic regression, saved without pickle.

Why this model: on MasakhaNEWS a char 2-5-gram TF-IDF + LR is within a few points of fine-tuned
AfroXLMR-large, trains in seconds on 2 cores, and character n-grams need no tokenizer for tone
marks, Hausa hooked letters or code-switching. Hashing (instead of a fitted vocabulary) keeps the
saved artefact to plain arrays: the columns seen in training, their idf and the LR weights.
"""
from __future__ import annotations

import json
import unicodedata
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from sklearn.exceptions import DataDimensionalityWarning, NotFittedError
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import normalize
from sklearn.random_projection import SparseRandomProjection
from model.params import merged_params

DEFAULTS: dict = {
    "n_features": 2 ** 20, "ngram_min": 2, "ngram_max": 5, "sublinear_tf": True,
    "C": 10.0, "max_iter": 2000, "class_weight": None,
    "embed_dim": 256,   # sparse random projection of the tf-idf vector (keeps cosine geometry)
    "labels": None,     # classes to include in classes_ even when absent from y
}


def _preprocess(text: str) -> str:
    """NFC + lowercase, so NFD-typed Yorùbá tone marks hash like the precomposed ones."""
    return unicodedata.normalize("NFC", text).lower()


class TextClassifier:
    def __init__(self, *, multi_label: bool = False, seed: int = 0, **hyper):
        self.multi_label = multi_label
        self.seed = seed
        self.hyper = hyper

    def _params(self) -> dict:
        return merged_params(self.hyper, DEFAULTS)

    def _vectorizer(self, p: dict) -> HashingVectorizer:
        return HashingVectorizer(analyzer="char_wb", ngram_range=(p["ngram_min"], p["ngram_max"]),
                                 n_features=p["n_features"], alternate_sign=False, norm=None,
                                 preprocessor=_preprocess, dtype=np.float64)

    def _tfidf(self, texts: Sequence[str]) -> sp.csr_matrix:
        """l2-normalised tf-idf over the training columns only (unseen n-grams carry no weight)."""
        p = self._params()
        counts = self._vectorizer(p).transform(list(texts)).tocsc()[:, self.columns_].tocsr()
        if p["sublinear_tf"]:
            counts.data = 1.0 + np.log(counts.data)
        return normalize(counts.multiply(self.idf_[None, :]).tocsr())

    # ------------------------------------------------------------------ training
    def fit(self, texts: Sequence[str], y: Sequence[Sequence[str]]) -> "TextClassifier":
        p = self._params()
        if len(texts) != len(y):
            raise ValueError(f"{len(texts)} texts but {len(y)} label lists")
        if not texts:
            raise ValueError("fit needs at least one labelled text")
        y = [[y_i] if isinstance(y_i, str) else list(y_i) for y_i in y]
        if not self.multi_label and any(len(l) != 1 for l in y):
            raise ValueError("single-label mode needs exactly one label per text; "
                             "use multi_label=True for several")
        self.classes_ = sorted({c for l in y for c in l} | set(p["labels"] or ()))
        counts = self._vectorizer(p).transform(list(texts)).tocsc()
        df = np.diff(counts.indptr)
        self.columns_ = np.flatnonzero(df).astype(np.int64)
        n = len(texts)
        self.idf_ = np.log((1 + n) / (1 + df[self.columns_])) + 1.0  # sklearn's smooth idf
        X = self._tfidf(texts)
        k = len(self.classes_)
        coef = np.zeros((k, X.shape[1]))
        intercept = np.zeros(k)
        Y = np.array([[c in l for c in self.classes_] for l in y], dtype=bool)
        if self.multi_label:
            for j in range(k):
                coef[j], intercept[j] = self._binary(X, Y[:, j], p)
        else:
            present = np.flatnonzero(Y.any(axis=0))
            if len(present) >= 2:
                lr = self._lr(p).fit(X, Y[:, present].argmax(axis=1))
                w, b = (lr.coef_, lr.intercept_)
                if len(present) == 2:  # sklearn stores one row for two classes
                    w, b = np.vstack([-w / 2, w / 2]), np.array([-b[0] / 2, b[0] / 2])
                coef[present], intercept[present] = w, b
            # classes never seen (from ``labels``) or the only class: fixed scores
            absent = np.setdiff1d(np.arange(k), present)
            intercept[absent] = -30.0
        self.coef_, self.intercept_ = coef, intercept
        self._projection()
        return self

    def _lr(self, p: dict) -> LogisticRegression:
        return LogisticRegression(C=p["C"], max_iter=p["max_iter"], class_weight=p["class_weight"],
                                  random_state=self.seed)

    def _binary(self, X, yj: np.ndarray, p: dict) -> tuple[np.ndarray, float]:
        if yj.all() or not yj.any():  # one-sided class: its smoothed prior, independent of text
            prior = (yj.sum() + 0.5) / (len(yj) + 1.0)
            return np.zeros(X.shape[1]), float(np.log(prior / (1 - prior)))
        lr = self._lr(p).fit(X, yj)
        return lr.coef_[0], float(lr.intercept_[0])

    def _projection(self) -> None:
        # regenerated from (seed, n columns) at load time, so nothing extra is saved
        p = self._params()
        self.proj_ = SparseRandomProjection(n_components=p["embed_dim"], dense_output=True,
                                            random_state=self.seed)
        with warnings.catch_warnings():  # tiny vocabularies: d stays fixed on purpose
            warnings.simplefilter("ignore", DataDimensionalityWarning)
            self.proj_.fit(sp.csr_matrix((1, len(self.columns_))))

    # ------------------------------------------------------------------ inference
    def _check(self) -> None:
        if not hasattr(self, "coef_"):
            raise NotFittedError("This TextClassifier is not fitted yet; call fit first.")

    def decision_function(self, texts: Sequence[str]) -> np.ndarray:
        self._check()
        if len(texts) == 0:
            return np.zeros((0, len(self.classes_)))
        return np.asarray(self._tfidf(texts) @ self.coef_.T) + self.intercept_

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        z = self.decision_function(texts)
        if self.multi_label:
            return 1.0 / (1.0 + np.exp(-z))
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def predict(self, texts: Sequence[str]) -> list[list[str]]:
        proba = self.predict_proba(texts)
        if self.multi_label:
            return [[c for c, q in zip(self.classes_, row) if q >= 0.5] for row in proba]
        return [[self.classes_[int(np.argmax(row))]] for row in proba]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(n, embed_dim) random projection of the l2 tf-idf vectors (cosine-preserving)."""
        self._check()
        if len(texts) == 0:
            return np.zeros((0, self._params()["embed_dim"]))
        return np.asarray(self.proj_.transform(self._tfidf(texts)))

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | Path) -> None:
        self._check()
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        meta = {"format": "textcat-hashed-tfidf-lr/1", "multi_label": self.multi_label,
                "seed": self.seed, "hyper": self.hyper, "classes": self.classes_}
        (d / "textcat.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
        np.savez_compressed(d / "textcat.npz", columns=self.columns_, idf=self.idf_,
                            coef=self.coef_, intercept=self.intercept_)

    @classmethod
    def load(cls, directory: str | Path) -> "TextClassifier":
        d = Path(directory)
        meta = json.loads((d / "textcat.json").read_text(encoding="utf-8"))
        obj = cls(multi_label=meta["multi_label"], seed=meta["seed"], **meta["hyper"])
        obj.classes_ = list(meta["classes"])
        with np.load(d / "textcat.npz", allow_pickle=False) as z:
            obj.columns_, obj.idf_ = z["columns"], z["idf"]
            obj.coef_, obj.intercept_ = z["coef"], z["intercept"]
        obj._projection()
        return obj
