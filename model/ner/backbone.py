"""BackboneTagger: fine-tunes a local Hugging Face token-classification model, same API as NERTagger.

Why: where a pretrained African-language encoder (e.g. an AfroXLMR checkpoint) has been copied
onto the machine, fine-tuning it beats any from-scratch model by a wide margin. Nothing is ever
downloaded (``local_files_only=True``); the backend passes the directory from ``NER_BACKBONE``.

Alignment: only the first subword of each word carries the word's label; other subwords, special
tokens and padding get -100 and are ignored by the loss. At inference the first-subword logits
are turned into per-word log-probabilities and decoded by a BIO-constrained chain (the CRF module
with zero learned scores), so predictions are valid BIO and marginals/span probabilities come
from the same forward-backward code as NERTagger. Words cut off by ``max_length`` are tagged O.
Needs the optional ``transformers`` package (a dev/optional extra).
"""
from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from sklearn.exceptions import NotFittedError

from model.ner.crf import CRF
from model.ner.decoding import CRFDecoding, batch_tables
from model.ner.spans import repair_bio
from model.params import merged_params

DEFAULTS: dict = {"lr": 5e-5, "batch_size": 16, "max_length": 256, "weight_decay": 0.01,
                  "dev_fraction": 0.1, "min_dev_sentences": 50, "patience": 2,
                  "max_seconds": None, "labels": None, "predict_batch_size": 64}


class BackboneTagger(CRFDecoding):
    _net_attr = "model_"

    def __init__(self, *, path: str | Path | None = None, max_epochs: int = 5, seed: int = 0,
                 device: str | None = None, **hyper):
        self.path = path
        self.max_epochs = max_epochs
        self.seed = seed
        self.device = device
        self.hyper = hyper

    def _params(self) -> dict:
        return merged_params(self.hyper, DEFAULTS)

    def _load(self, source: Path, tags: list[str] | None = None) -> None:
        from transformers import AutoModelForTokenClassification, AutoTokenizer
        self.tokenizer_ = AutoTokenizer.from_pretrained(source, local_files_only=True)
        if not self.tokenizer_.is_fast:
            raise ValueError("BackboneTagger needs a fast tokenizer (word_ids() for alignment)")
        kw = {}
        if tags is not None:
            kw = {"num_labels": len(tags), "id2label": dict(enumerate(tags)),
                  "label2id": {t: i for i, t in enumerate(tags)}, "ignore_mismatched_sizes": True}
        dev = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.device_ = torch.device(dev)
        self.model_ = AutoModelForTokenClassification.from_pretrained(
            source, local_files_only=True, **kw).to(self.device_)
        self.chain_ = CRF(self.tags_).to(self.device_)  # zero scores + BIO constraints

    def _encode(self, X: Sequence[Sequence[str]], y=None) -> tuple[dict, list[list[int]]]:
        """Tokenise pre-split words; returns tensors and, per sentence, the first-subword index
        of each word (-1 when truncated away)."""
        p = self._params()
        enc = self.tokenizer_([list(x) for x in X], is_split_into_words=True, truncation=True,
                              max_length=p["max_length"], padding=True, return_tensors="pt")
        firsts = []
        labels = torch.full(enc["input_ids"].shape, -100, dtype=torch.long)
        for i, x in enumerate(X):
            first = [-1] * len(x)
            prev = None
            for pos, w in enumerate(enc.word_ids(i)):
                if w is not None and w != prev:
                    first[w] = pos
                    if y is not None:
                        labels[i, pos] = self.tag_id_[y[i][w]]
                prev = w
            firsts.append(first)
        batch = {k: v.to(self.device_) for k, v in enc.items()}
        if y is not None:
            batch["labels"] = labels.to(self.device_)
        return batch, firsts

    def fit(self, X: Sequence[Sequence[str]], y: Sequence[Sequence[str]]) -> "BackboneTagger":
        if self.path is None:
            raise ValueError("BackboneTagger needs path= a local Hugging Face model directory")
        p = self._params()
        if len(X) != len(y) or any(len(a) != len(b) for a, b in zip(X, y)):
            raise ValueError("X and y must have the same sentences and tokens per sentence")
        y = [repair_bio(t) for t in y]
        types = {t[2:] for ys in y for t in ys if t != "O"} | set(p["labels"] or ())
        self.tags_ = ["O"] + [f"{bi}-{t}" for t in sorted(types) for bi in ("B", "I")]
        self.tag_id_ = {t: i for i, t in enumerate(self.tags_)}
        torch.manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        self._load(Path(self.path), self.tags_)
        idx = [i for i in range(len(X)) if len(X[i])]
        rng.shuffle(idx)
        n_dev = int(round(p["dev_fraction"] * len(idx))) if len(idx) >= p["min_dev_sentences"] else 0
        dev, train = idx[:n_dev], idx[n_dev:]
        opt = torch.optim.AdamW(self.model_.parameters(), lr=p["lr"], weight_decay=p["weight_decay"])
        budget = p["max_seconds"] if p["max_seconds"] is not None else 30 + 0.3 * len(train)
        t0, best, best_state, bad, self.n_epochs_ = time.perf_counter(), None, None, 0, 0
        from seqeval.metrics import f1_score
        for epoch in range(1, self.max_epochs + 1 if train else 1):
            self.model_.train()
            order = sorted(train, key=lambda i: len(X[i]) + rng.uniform(0, 3))
            batches = [order[s:s + p["batch_size"]] for s in range(0, len(order), p["batch_size"])]
            rng.shuffle(batches)
            for b in batches:
                batch, _ = self._encode([X[i] for i in b], [y[i] for i in b])
                loss = self.model_(**batch).loss
                opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.model_.parameters(), 1.0)
                opt.step()
            self.n_epochs_ = epoch
            if dev:
                f1 = f1_score([y[i] for i in dev], self.predict([X[i] for i in dev]))
                if best is None or f1 > best:
                    best, bad = f1, 0
                    best_state = {k: v.detach().cpu().clone()
                                  for k, v in self.model_.state_dict().items()}
                else:
                    bad += 1
            elapsed = time.perf_counter() - t0
            if bad >= p["patience"] or elapsed * (epoch + 1) / epoch > budget:
                break
        if best_state is not None:
            self.model_.load_state_dict(best_state)
        self.model_.eval()
        return self

    # ------------------------------------------------------------------ inference
    def _check(self) -> None:
        if not hasattr(self, "model_"):
            raise NotFittedError("This BackboneTagger is not fitted yet; call fit first.")

    @torch.no_grad()
    def _run(self, X, want: str, mc: bool = False) -> list:
        self._check()
        self.model_.train(mc)
        out: list = [None] * len(X)
        idx = sorted((i for i in range(len(X)) if len(X[i])), key=lambda i: len(X[i]))
        bs = self._params()["predict_batch_size"]
        n_tags = len(self.tags_)
        for s in range(0, len(idx), bs):
            b = idx[s:s + bs]
            batch, firsts = self._encode([X[i] for i in b])
            res = self.model_(**batch, output_hidden_states=(want == "embed"))
            length = max(len(X[i]) for i in b)
            if want == "embed":
                hid = res.hidden_states[-1]
            logp = torch.log_softmax(res.logits.double(), dim=-1)
            emis = torch.full((len(b), length, n_tags), -1e4, dtype=torch.float64,
                              device=self.device_)
            emis[:, :, 0] = 0.0  # words lost to truncation: O
            mask = torch.zeros((len(b), length), dtype=torch.bool, device=self.device_)
            for r, i in enumerate(b):
                mask[r, :len(X[i])] = True
                pos = [(w, f) for w, f in enumerate(firsts[r]) if f >= 0]
                if pos:
                    w_idx, f_idx = zip(*pos)
                    emis[r, list(w_idx)] = logp[r, list(f_idx)]
                if want == "embed":
                    f_idx = [f for f in firsts[r] if f >= 0] or [0]
                    out[i] = hid[r, f_idx].mean(0).float().cpu().numpy()
            if want == "embed":
                continue
            for i, r in zip(b, batch_tables(self.chain_, emis, mask, [len(X[i]) for i in b], want)):
                out[i] = r
        self.model_.eval()
        return out

    def _crf(self) -> CRF:
        return self.chain_

    def embed(self, X) -> np.ndarray:
        """Mean of the last hidden layer over each word's first subword; zeros when empty."""
        res = self._run(X, "embed")
        d = self.model_.config.hidden_size
        return np.stack([r if r is not None else np.zeros(d, dtype=np.float32) for r in res]) \
            if len(X) else np.zeros((0, d), dtype=np.float32)

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | Path) -> None:
        self._check()
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        self.model_.save_pretrained(d / "model")  # safetensors
        self.tokenizer_.save_pretrained(d / "model")
        meta = {"format": "ner-backbone/1", "max_epochs": self.max_epochs, "seed": self.seed,
                "hyper": self.hyper, "tags": self.tags_, "n_epochs": self.n_epochs_}
        (d / "tagger.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, directory: str | Path, device: str | None = None) -> "BackboneTagger":
        d = Path(directory)
        meta = json.loads((d / "tagger.json").read_text(encoding="utf-8"))
        obj = cls(path=d / "model", max_epochs=meta["max_epochs"], seed=meta["seed"],
                  device=device, **meta["hyper"])
        obj.tags_ = list(meta["tags"])
        obj.tag_id_ = {t: i for i, t in enumerate(obj.tags_)}
        obj.n_epochs_ = meta["n_epochs"]
        obj._load(d / "model")
        obj.model_.eval()
        return obj
