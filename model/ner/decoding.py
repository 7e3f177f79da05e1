"""What both taggers read off their linear-chain CRF, computed once per batch and shared.

``NERTagger`` and ``BackboneTagger`` differ only in how they produce emissions; Viterbi paths,
sequence probabilities, token marginals, span probabilities and MC-dropout samples come from the
same tables. ``decode`` returns all of them from ONE network pass: the backend's re-scoring of
10,000 tasks used to run the network three times (marginals, Viterbi, marginals again for the span
confidences), which was most of its model time.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch

from model.ner.crf import CRF
from model.ner.spans import bio_entities, span_probability

@dataclass
class Decoded:
    """One sentence: Viterbi tags, log p(path | x), token marginals and entity spans
    ``(first_token, end_token, label, probability)``."""
    tags: list[str]
    log_proba: float
    marginals: np.ndarray
    spans: list[tuple[int, int, str, float]]


def batch_tables(crf: CRF, emis: torch.Tensor, mask: torch.Tensor, lengths: list[int],
                 want: str) -> list[tuple]:
    """Per row of a batch: ``(path, log_proba)`` for "viterbi", ``(marg, alpha, beta, emis,
    log_z)`` for "marginals", and ``(path, log_proba, marg, alpha, beta, emis, log_z)`` for
    "decode" (one forward-backward serves both log Z and the marginals)."""
    out: list[tuple] = []
    if want in ("viterbi", "decode"):
        paths, scores = crf.viterbi(emis, mask)
    if want in ("marginals", "decode"):
        marg, alpha, beta, log_z = crf.marginals(emis, mask)
        arrs = [a.cpu().numpy() for a in (marg, alpha, beta, emis)]
    else:
        log_z = crf.log_partition(emis, mask)
    if want in ("viterbi", "decode"):
        lp = (scores - log_z).cpu().numpy()
    for r, n in enumerate(lengths):
        tables = tuple(a[r, :n] for a in arrs) + (float(log_z[r]),) if want != "viterbi" else ()
        out.append(((paths[r], float(lp[r])) if want != "marginals" else ()) + tables)
    return out


class CRFDecoding:
    """Mixin: prediction methods over ``self._run(X, want, mc)`` (``want`` one of "viterbi",
    "marginals", "decode", "embed") and the CRF returned by ``self._crf()``; the class provides
    ``tags_``, ``_check()`` and names in ``_net_attr`` the attribute holding its torch module
    (whose dropout MC sampling switches on)."""

    tags_: list[str]
    _net_attr: str

    def _run(self, X, want: str, mc: bool = False) -> list:  # pragma: no cover - abstract
        raise NotImplementedError

    def _crf(self) -> CRF:  # pragma: no cover - abstract
        raise NotImplementedError

    def _empty(self) -> np.ndarray:
        return np.zeros((0, len(self.tags_)))

    def predict(self, X) -> list[list[str]]:
        return [[self.tags_[k] for k in r[0]] if r else [] for r in self._run(X, "viterbi")]

    def sequence_log_proba(self, X) -> np.ndarray:
        """log p(Viterbi path | x) per sentence; 0.0 for an empty sentence (its only path)."""
        return np.array([r[1] if r else 0.0 for r in self._run(X, "viterbi")], dtype=np.float64)

    def predict_marginals(self, X) -> list[np.ndarray]:
        return [r[0].astype(np.float64) if r else self._empty() for r in self._run(X, "marginals")]

    def predict_spans(self, X) -> list[list[tuple[int, int, str, float]]]:
        """Viterbi entities with confidence = exact CRF probability of that span (see spans.py)."""
        return [d.spans for d in self.decode(X)]

    def decode(self, X) -> list[Decoded]:
        """Tags, sequence log-probability, marginals and spans of every sentence, in one pass."""
        _, trans, end = (a.detach().cpu().numpy() for a in self._crf()._params(torch.float64))
        tag_id = {t: i for i, t in enumerate(self.tags_)}
        out = []
        for r in self._run(X, "decode"):
            if not r:
                out.append(Decoded([], 0.0, self._empty(), []))
                continue
            path, lp, marg, alpha, beta, emis, log_z = r
            tags = [self.tags_[k] for k in path]
            spans = [(first, last, label,
                      span_probability(first, last, tag_id[f"B-{label}"], tag_id[f"I-{label}"],
                                       alpha, beta, emis, trans, end, log_z))
                     for first, last, label in bio_entities(tags)]
            out.append(Decoded(tags, lp, marg.astype(np.float64), spans))
        return out

    def mc_dropout_marginals(self, X, n_samples: int = 10, seed: int = 0) -> list[np.ndarray]:
        """Marginals under ``n_samples`` seeded dropout masks. Sampling runs on a private copy of
        the network: switching the serving network to train mode would race with /predict."""
        self._check()
        sampler = copy.copy(self)
        setattr(sampler, self._net_attr, copy.deepcopy(getattr(self, self._net_attr)))
        return mc_dropout_samples(sampler._run, X, len(self.tags_), n_samples, seed)


def mc_dropout_samples(run, X, n_tags: int, n_samples: int, seed: int) -> list[np.ndarray]:
    """``n_samples`` marginal passes of ``run(X, "marginals", mc=True)`` under seeded dropout masks,
    stacked per sentence as ``(n_samples, len, n_tags)``; the global torch RNG is left as found."""
    gen_state = torch.random.get_rng_state()
    samples = []
    for s in range(n_samples):
        torch.manual_seed(seed * 100_003 + s)
        samples.append(run(X, "marginals", mc=True))
    torch.random.set_rng_state(gen_state)
    return [np.stack([smp[i][0] for smp in samples]).astype(np.float64) if len(X[i])
            else np.zeros((n_samples, 0, n_tags)) for i in range(len(X))]
