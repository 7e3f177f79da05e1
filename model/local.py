"""The local model of one Label Studio project: an NER tagger and/or a text classifier, chosen by
the project's ``TaskSpec``, trained on human ``Example``s, predicting character spans and choices
with confidences.

This is the piece the backend's ``fit`` trains and ``predict`` serves; active learning ranks with
the same object (``outputs``). It converts between Label Studio's character spans and the
tagger's BIO tokens in one place (``model.tokenize``), so offsets always round-trip exactly.
"""
from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from model.spec import ChoicesControl, NERControl, TaskSpec
from model.tokenize import spans_to_bio, tokenize
from model.types import Example, Span

MODEL_FORMAT = 1


@dataclass
class LocalPrediction:
    spans: list[Span] = field(default_factory=list)
    choices: list[tuple[str, float]] = field(default_factory=list)
    score: float = 0.0  # task confidence in [0, 1]; low = the model is unsure
    marginals: np.ndarray | None = field(default=None, repr=False)  # (n_tokens, n_tags), reused by outputs()
    log_proba: float | None = None  # log p(Viterbi tags | text), reused by outputs() for MNLP


def _spec_to_json(spec: TaskSpec) -> dict:
    return {
        "ner": None if spec.ner is None else {**spec.ner.__dict__, "labels": list(spec.ner.labels)},
        "choices": None if spec.choices is None else {**spec.choices.__dict__,
                                                       "choices": list(spec.choices.choices)},
    }


def _spec_from_json(d: dict) -> TaskSpec:
    ner = d.get("ner")
    ch = d.get("choices")
    return TaskSpec(
        ner=None if ner is None else NERControl(**{**ner, "labels": tuple(ner["labels"])}),
        choices=None if ch is None else ChoicesControl(**{**ch, "choices": tuple(ch["choices"])}),
    )


NER_MODELS = ("tagger", "crf", "backbone")


def lacking_outputs(ner_model: str | None) -> dict[str, str]:
    """``ModelOutputs`` fields the served model cannot give, each with what would give it, for
    ``ner_model`` (``None``: the text classifier). MC-dropout samples need a network with dropout;
    the CRF and the text classifier have none, so a strategy reading them (BALD) is refused
    before it fails at the first re-score."""
    if ner_model in ("tagger", "backbone"):
        return {}
    return {"mc_marginals": "MC-dropout samples, which only a network with dropout gives "
                            "(ner_model 'tagger' or 'backbone', NER projects)"}


class LocalModel:
    """``fit(examples) -> self``, ``predict(texts) -> LocalPrediction``s, ``save``/``load``.

    NER model (``ner_model``): ``tagger`` (``NERTagger``, BiLSTM-CRF from scratch), ``crf``
    (``CRFSuiteTagger``) or ``backbone`` (``BackboneTagger`` fine-tuning ``ner_backbone``). The
    first two also learn word classes from the project's raw text (the annotated tasks' and the
    unlabelled ones', ``model.ner.clusters``) unless ``word_clusters`` is False.

    The simulation (``model.simulation``) trains this same object through ``fit_tokens``, which
    ``fit`` calls after tokenising, so a figure it prints is a figure of the served model.
    """

    def __init__(self, spec: TaskSpec, *, ner_model: str | None = None, ner_backbone: str | None = None,
                 ner_params: dict | None = None, ner_aux: Sequence[str] = (),
                 ner_aux_max: int | None = 2000, word_clusters: bool = True, seed: int = 0):
        self.spec = spec
        self.ner_model = ner_model or ("backbone" if ner_backbone else "tagger")
        if self.ner_model not in NER_MODELS:
            raise ValueError(f"unknown NER model {self.ner_model!r}; expected one of {list(NER_MODELS)}")
        if self.ner_model == "backbone" and not ner_backbone:
            raise ValueError("ner_model 'backbone' needs NER_BACKBONE (a local Hugging Face model folder)")
        self.ner_backbone = ner_backbone
        self.ner_params = dict(ner_params or {})
        # labelled CoNLL corpora of related languages trained beside the project's own labels
        # (``model.conll.read_aux_corpora``); only a seeded sample of ner_aux_max sentences, since
        # every retrain pays for them
        self.ner_aux = tuple(ner_aux)
        self.ner_aux_max = ner_aux_max
        self.word_clusters = word_clusters and self.ner_model != "backbone"
        self.seed = seed

    # -- training ------------------------------------------------------------------------------
    def _new_tagger(self, clusters):
        if self.ner_model == "backbone":
            from model.ner.backbone import BackboneTagger
            return BackboneTagger(path=self.ner_backbone, seed=self.seed, **self.ner_params)
        if self.ner_model == "crf":
            from model.ner.crfsuite import CRFSuiteTagger
            return CRFSuiteTagger(seed=self.seed, clusters=clusters, **self.ner_params)
        from model.ner.tagger import NERTagger
        return NERTagger(seed=self.seed, clusters=clusters, **self.ner_params)

    def fit(self, examples: list[Example],
            unlabelled_texts: Sequence[str] | Callable[[], Sequence[str]] = (),
            cluster_dir: str | Path | None = None, n_unlabelled: int | None = None) -> "LocalModel":
        """Train on human ``examples``; ``unlabelled_texts`` (the project's other tasks, or a
        function listing them) only feed the word classes, cached in ``cluster_dir`` across
        retrains. With ``n_unlabelled`` (how many there are) and a function, the texts are listed
        only when the cached classes are not fresh for that many."""
        self.metrics_ = {}
        t0 = time.perf_counter()
        X, y = [], []
        if self.spec.ner is not None:
            allowed = set(self.spec.ner.labels)
            for ex in examples:
                toks = tokenize(ex.text)
                X.append([t.text for t in toks])
                y.append(spans_to_bio(toks, [s for s in ex.spans if s.label in allowed]))
        def raw() -> list[list[str]]:
            texts = unlabelled_texts() if callable(unlabelled_texts) else unlabelled_texts
            return [[t.text for t in tokenize(text)] for text in texts]

        lazy = callable(unlabelled_texts) and n_unlabelled is not None
        unlabelled = raw if lazy else (raw() if self.spec.ner is not None and self.word_clusters and X else [])
        tokenise_s = time.perf_counter() - t0
        self.fit_tokens(X, y, examples=examples, unlabelled=unlabelled, cluster_dir=cluster_dir,
                        n_unlabelled=n_unlabelled if lazy else None)
        self.metrics_["fit_seconds"] = round(time.perf_counter() - t0, 3)
        self.metrics_["tokenise_seconds"] = round(tokenise_s, 3)
        return self

    def fit_tokens(self, X: list[list[str]], y: list[list[str]], *, examples: Sequence[Example] = (),
                   unlabelled: Sequence[Sequence[str]] | Callable[[], Sequence[Sequence[str]]] = (),
                   cluster_dir: str | Path | None = None, n_unlabelled: int | None = None,
                   aux: tuple[list, list] | None = None) -> "LocalModel":
        """Train on pre-tokenised NER data (``X`` tokens, ``y`` BIO tags; ``unlabelled`` token lists
        feed the word classes) and/or the choices of ``examples``: what ``fit`` does after
        tokenising, and what the simulation calls with CoNLL tokens. ``aux`` gives the auxiliary
        corpora already read (the simulation's), instead of reading ``ner_aux``."""
        t0 = time.perf_counter()
        self.metrics_ = {**getattr(self, "metrics_", {}), "n_examples": max(len(X), len(examples))}
        self.tagger_ = self.classifier_ = None
        if self.spec.ner is not None and X:
            # canonical order: the same labels give the same model however they were listed
            # (Label Studio's task order, the simulation's purchase order)
            order = sorted(range(len(X)), key=lambda i: (list(X[i]), list(y[i])))
            X, y = [list(X[i]) for i in order], [list(y[i]) for i in order]
            clusters = None
            if self.word_clusters:
                from model.ner.clusters import ClusterCache
                cache = ClusterCache(cluster_dir)
                texts = (lambda: [*X, *unlabelled()]) if callable(unlabelled) else [*X, *unlabelled]
                clusters = cache.get(texts, None if n_unlabelled is None else len(X) + n_unlabelled)
                self.metrics_.update(cache.last_)
            self.metrics_["n_entities"] = sum(t.startswith("B-") for tags in y for t in tags)
            if aux is None and self.ner_aux:
                from model.conll import read_aux_corpora
                aux = read_aux_corpora(self.ner_aux, self.spec.ner.labels, self.ner_aux_max, self.seed)
            if aux is not None and aux[0]:
                aux_x, aux_y = list(aux[0]), list(aux[1])
                X, y = aux_x + list(X), aux_y + list(y)
                self.metrics_["n_aux_sentences"] = len(aux_x)
            self.tagger_ = self._new_tagger(clusters).fit(X, y)
        if self.spec.choices is not None:
            allowed = set(self.spec.choices.choices)
            pairs = [(ex.text, [c for c in ex.choices if c in allowed]) for ex in examples]
            pairs = [(t, c) for t, c in pairs if c]
            if pairs:
                from model.textcat.classifier import TextClassifier
                self.classifier_ = TextClassifier(multi_label=self.spec.choices.multi_label,
                                                  seed=self.seed).fit([p[0] for p in pairs],
                                                                      [p[1] for p in pairs])
                self.metrics_["n_classified"] = len(pairs)
        if self.tagger_ is None and self.classifier_ is None:
            raise ValueError("no usable annotations: none of the examples has labels of this project's config")
        self.metrics_["fit_seconds"] = round(time.perf_counter() - t0, 3)
        return self

    # -- prediction ----------------------------------------------------------------------------
    def predict(self, texts: list[str]) -> list[LocalPrediction]:
        preds = [LocalPrediction(score=1.0) for _ in texts]
        if self.tagger_ is not None:
            toks = [tokenize(t) for t in texts]
            X = [[t.text for t in ts] for ts in toks]
            for p, ts, d in zip(preds, toks, self.tagger_.decode(X)):  # one network pass
                m = d.marginals
                p.marginals, p.log_proba = m, d.log_proba
                p.spans = [Span(ts[a].start, ts[b - 1].end, label, float(conf)) for a, b, label, conf in d.spans]
                # least confidence over real tokens: the least sure token decides
                p.score = float(m.max(axis=1).min()) if len(m) else 1.0
        if self.classifier_ is not None:
            proba = self.classifier_.predict_proba(texts)
            classes = self.classifier_.classes_
            multi = self.spec.choices.multi_label
            for p, row in zip(preds, proba):
                if multi:
                    chosen = [(classes[j], float(row[j])) for j in np.flatnonzero(row >= 0.5)]
                    conf = float(np.min(np.maximum(row, 1 - row))) if len(row) else 1.0
                else:
                    j = int(np.argmax(row))
                    chosen = [(classes[j], float(row[j]))]
                    conf = float(row[j])
                p.choices = chosen
                p.score = min(p.score, conf)
        return preds

    # -- active learning -----------------------------------------------------------------------
    def outputs(self, texts: list[str], preds: list[LocalPrediction] | None = None, *,
                llm_spans: list | None = None, llm_consistency=None, mc_samples: int = 10):
        """``ModelOutputs`` over ``texts`` for the query strategies, computed lazily: a strategy
        pays only for what it reads (marginals, MC-dropout passes, embeddings ...). NER drives the
        ranking when the project has both controls, since span errors cost annotators most."""
        from model.active.outputs import ModelOutputs

        fields: dict = {}
        if self.tagger_ is not None:
            tagger = self.tagger_

            @functools.cache
            def X() -> list[list[str]]:  # tokenised only if a strategy needs another model pass
                return [[t.text for t in tokenize(text)] for text in texts]

            known = preds is not None and all(p.marginals is not None for p in preds)
            known_lp = preds is not None and all(p.log_proba is not None for p in preds)
            fields.update(marginals=[p.marginals for p in preds] if known else (lambda: tagger.predict_marginals(X())),
                          seq_log_proba=(np.array([p.log_proba for p in preds]) if known_lp
                                         else (lambda: tagger.sequence_log_proba(X()))),
                          # a CRF has no dropout: BALD-style strategies then say what they lack
                          mc_marginals=(lambda: tagger.mc_dropout_marginals(X(), n_samples=mc_samples))
                          if hasattr(tagger, "mc_dropout_marginals") else None,
                          embeddings=lambda: tagger.embed(X()))
            if preds is not None:
                fields["model_spans"] = [[(s.start, s.end, s.label, s.score) for s in p.spans] for p in preds]
            if llm_spans is not None:
                fields["llm_spans"] = llm_spans
                fields["llm_consistency"] = llm_consistency
        elif self.classifier_ is not None:
            clf = self.classifier_
            fields.update(probabilities=lambda: clf.predict_proba(texts), multi_label=self.spec.choices.multi_label,
                          embeddings=lambda: clf.embed(texts))
        return ModelOutputs(len(texts), **fields)

    # -- persistence ---------------------------------------------------------------------------
    def save(self, directory: str | Path) -> None:
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        if self.tagger_ is not None:
            self.tagger_.save(d / "ner")
        if self.classifier_ is not None:
            self.classifier_.save(d / "textcat")
        (d / "local_model.json").write_text(json.dumps({
            "format": MODEL_FORMAT, "spec": _spec_to_json(self.spec), "seed": self.seed,
            "ner_model": self.ner_model, "ner_backbone": self.ner_backbone, "ner_params": self.ner_params,
            "metrics": getattr(self, "metrics_", {}),
            "has_ner": self.tagger_ is not None, "has_textcat": self.classifier_ is not None,
        }, ensure_ascii=False, indent=1), encoding="utf-8")

    @classmethod
    def load(cls, directory: str | Path) -> "LocalModel":
        d = Path(directory)
        meta = json.loads((d / "local_model.json").read_text(encoding="utf-8"))
        if meta.get("format") != MODEL_FORMAT:
            raise ValueError(f"model format {meta.get('format')} is not supported (expected {MODEL_FORMAT})")
        self = cls(_spec_from_json(meta["spec"]), ner_model=meta.get("ner_model"),
                   ner_backbone=meta.get("ner_backbone"), ner_params=meta.get("ner_params"),
                   seed=meta.get("seed", 0))
        self.metrics_ = meta.get("metrics", {})
        self.tagger_ = self.classifier_ = None
        if meta.get("has_ner"):
            if self.ner_model == "backbone":
                from model.ner.backbone import BackboneTagger
                self.tagger_ = BackboneTagger.load(d / "ner")
            elif self.ner_model == "crf":
                from model.ner.crfsuite import CRFSuiteTagger
                self.tagger_ = CRFSuiteTagger.load(d / "ner")
            else:
                from model.ner.tagger import NERTagger
                self.tagger_ = NERTagger.load(d / "ner")
        if meta.get("has_textcat"):
            from model.textcat.classifier import TextClassifier
            self.classifier_ = TextClassifier.load(d / "textcat")
        return self
