"""Data and models of the offline simulation: every model is the served ``model.local.LocalModel``.

``fit_model`` builds the model each round exactly as the backend's ``fit`` does (same class, same
defaults, word classes from the pool's raw text), so the simulation measures what a Label Studio
user gets: ``crf`` (``CRFSuiteTagger``; without word classes it is the reference CRF of
``shared/README.md``), ``tagger`` (``NERTagger``), ``backbone`` (``BackboneTagger``, needs a local
model folder) and ``textcat`` (``TextClassifier``, MasakhaNEWS-style data).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from model.local import NER_MODELS, LocalModel
from model.spec import ChoicesControl, NERControl, TaskSpec
from model.types import Example

__all__ = ["fit_model", "served_part", "MODEL_KINDS", "Data", "load_data", "evaluate"]

MODEL_KINDS = (*NER_MODELS, "textcat")


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


def spec_for(data: Data) -> TaskSpec:
    """The Label Studio config a project with this data set would have (value key ``text``)."""
    if data.task == "ner":
        return TaskSpec(ner=NERControl("label", "text", "text", tuple(data.labels)))
    return TaskSpec(choices=ChoicesControl("label", "text", "text", tuple(data.labels)))


def fit_model(kind: str, data: Data, idx: Sequence[int], labels: dict[int, list], *, seed: int = 0,
              params: dict | None = None, word_clusters: bool = True,
              ner_backbone: str | None = None) -> LocalModel:
    """The served ``LocalModel`` trained on the labels bought so far (``idx``), as the backend
    trains it: the NER models learn word classes from the labelled and unlabelled pool text (the
    whole pool, as a project's tasks are), with the auxiliary corpora (free, not counted) in
    every training set. ``kind`` is an NER model of ``model.local.NER_MODELS`` or ``textcat``."""
    if kind not in MODEL_KINDS:
        raise ValueError(f"unknown model kind {kind!r}; expected one of {list(MODEL_KINDS)}")
    spec = spec_for(data)
    if data.task == "ner":
        if kind == "textcat":
            raise ValueError("model textcat is for --task textcat")
        model = LocalModel(spec, ner_model=kind, ner_backbone=ner_backbone, ner_params=params,
                           ner_aux_max=None, word_clusters=word_clusters, seed=seed)
        chosen = set(int(i) for i in idx)
        X, y = [list(data.X[i]) for i in idx], [list(labels[i]) for i in idx]
        unlabelled = [data.X[i] for i in range(len(data.X)) if i not in chosen]
        model.fit_tokens(X, y, unlabelled=unlabelled, aux=(data.X_aux, data.Y_aux))
        return model
    if kind != "textcat":
        raise ValueError(f"model {kind!r} is an NER model; --task textcat needs model textcat")
    examples = [Example(data.X[i], choices=list(labels[i])) for i in idx]
    return LocalModel(spec, seed=seed).fit(examples)


def served_part(model: LocalModel):
    """What ``evaluate`` and the query strategies read: the tagger or the classifier."""
    return model.tagger_ if model.tagger_ is not None else model.classifier_
