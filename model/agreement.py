"""Agreement and accuracy metrics for BIO-tagged sentences: pure functions, no I/O.

Why a module of its own: choosing an LLM annotator (``model.selection``) and measuring human
inter-annotator agreement (``model.human_agreement``) must use the *same* definitions, so the
report can put an LLM's self-agreement next to the human figure without a footnote.

Conventions
- A *tagging* is ``list[list[str]]``: one list of BIO tags per sentence. Ratings for chance-
  corrected coefficients are flattened to one item per token.
- Entity scores follow seqeval's strict mode with the IOB2 scheme (an ``I-`` without a matching
  ``B-`` is no entity), the metric MasakhaNER reports.
- Undefined values are ``nan``, never a silent 0 or 1: Cohen's/Fleiss' kappa and Krippendorff's
  alpha are 0/0 when every rating is the same category (the expected disagreement is zero), and
  F1 is 0/0 when neither side has an entity. ``describe_nan`` turns them into words for reports.
- The point estimates call the reference libraries (scikit-learn, statsmodels, krippendorff).
  The additive forms (``coincidence_matrix``, ``alpha_from_coincidence``, ``kappa_from_confusion``,
  ``entity_counts``) exist so a bootstrap can re-sum per-sentence pieces instead of re-running
  the libraries a thousand times; tests check that both routes give the same numbers.
"""
from __future__ import annotations

import math
import warnings
from collections import Counter
from collections.abc import Sequence

import numpy as np

Tagging = Sequence[Sequence[str]]

__all__ = [
    "entity_spans", "entity_counts", "entity_scores", "f1_from_counts", "token_accuracy",
    "entity_token_accuracy", "cohen_kappa", "kappa_from_confusion", "fleiss_kappa",
    "krippendorff_alpha", "coincidence_matrix", "alpha_from_coincidence", "percent_agreement",
    "majority_vote", "span_consistency", "describe_nan",
]


# ---------------------------------------------------------------- entity level (seqeval strict)
def entity_spans(tags: Sequence[str]) -> set[tuple[str, int, int]]:
    """Strict IOB2 entities of one sentence as ``(type, start, end_exclusive)``, as seqeval sees them."""
    from seqeval.scheme import IOB2, Entities

    ents = Entities([list(tags)], IOB2, suffix=False).entities[0]
    return {(e.tag, e.start, e.end) for e in ents}


def entity_counts(gold: Tagging, pred: Tagging, types: Sequence[str] | None = None) -> np.ndarray:
    """Per-sentence ``(tp, n_pred, n_gold)`` counts: shape ``(n_sentences, 3)``, or
    ``(n_sentences, len(types), 3)`` when ``types`` is given (counts restricted to each type)."""
    _check_lengths(gold, pred)
    shape = (len(gold), 3) if types is None else (len(gold), len(types), 3)
    out = np.zeros(shape, dtype=np.int64)
    for i, (g, p) in enumerate(zip(gold, pred)):
        gs, ps = entity_spans(g), entity_spans(p)
        if types is None:
            out[i] = (len(gs & ps), len(ps), len(gs))
            continue
        for j, t in enumerate(types):
            gt = {s for s in gs if s[0] == t}
            pt = {s for s in ps if s[0] == t}
            out[i, j] = (len(gt & pt), len(pt), len(gt))
    return out


def f1_from_counts(tp: float, n_pred: float, n_gold: float) -> tuple[float, float, float]:
    """(precision, recall, F1); each ``nan`` when its denominator is zero (F1 = 2tp/(np+ng))."""
    tp, n_pred, n_gold = float(tp), float(n_pred), float(n_gold)
    p = tp / n_pred if n_pred else math.nan
    r = tp / n_gold if n_gold else math.nan
    f = 2 * tp / (n_pred + n_gold) if (n_pred + n_gold) else math.nan
    return p, r, f


def entity_scores(gold: Tagging, pred: Tagging) -> dict:
    """Micro and per-type entity precision/recall/F1 (strict IOB2).

    Returns ``{"precision", "recall", "f1", "support", "per_type": {type: {...}}}``. The micro F1
    equals ``seqeval.metrics.f1_score(gold, pred, mode="strict", scheme=IOB2)`` whenever it is
    defined; where seqeval would warn and print 0 for "no entities on either side", this gives
    ``nan``. Types that appear on neither side are absent from ``per_type``.
    """
    types = sorted({s[0] for sent in list(gold) + list(pred) for s in entity_spans(sent)})
    micro = entity_counts(gold, pred).sum(axis=0)
    p, r, f = f1_from_counts(*micro)
    out = {"precision": p, "recall": r, "f1": f, "support": int(micro[2]), "per_type": {}}
    if types:
        per = entity_counts(gold, pred, types).sum(axis=0)
        for t, (tp, n_p, n_g) in zip(types, per):
            tp_, tr_, tf_ = f1_from_counts(tp, n_p, n_g)
            out["per_type"][t] = {"precision": tp_, "recall": tr_, "f1": tf_, "support": int(n_g)}
    return out


# ---------------------------------------------------------------- token level
def token_accuracy(gold: Tagging, pred: Tagging) -> float:
    """Share of tokens (``O`` included) whose tag equals gold: the paper's "consistency" metric."""
    g, p = _flat(gold), _flat(pred, like=gold)
    return float(np.mean(np.array(g) == np.array(p))) if g else math.nan


def entity_token_accuracy(gold: Tagging, pred: Tagging) -> float:
    """Accuracy over gold non-``O`` tokens only: the paper's active-learning metric, which lets
    false-positive entities cost nothing (reported for comparison, never used to choose)."""
    pairs = [(a, b) for a, b in zip(_flat(gold), _flat(pred, like=gold)) if a != "O"]
    return float(np.mean([a == b for a, b in pairs])) if pairs else math.nan


def cohen_kappa(a: Sequence[str], b: Sequence[str]) -> float:
    """Cohen's kappa of two raters over the same items (``sklearn.metrics.cohen_kappa_score``);
    ``nan`` when both raters used one and the same category only (expected agreement 1)."""
    from sklearn.metrics import cohen_kappa_score

    if len(a) != len(b):
        raise ValueError(f"raters rate different numbers of items: {len(a)} != {len(b)}")
    if not len(a) or len(set(a) | set(b)) < 2:
        return math.nan
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(cohen_kappa_score(list(a), list(b)))


def kappa_from_confusion(conf: np.ndarray) -> float:
    """Cohen's kappa from a ``K x K`` confusion matrix (sums of per-sentence matrices)."""
    n = conf.sum()
    if n == 0:
        return math.nan
    po = np.trace(conf) / n
    pe = float((conf.sum(0) * conf.sum(1)).sum()) / n**2
    return float((po - pe) / (1 - pe)) if pe < 1 else math.nan


# ---------------------------------------------------------------- many raters
def fleiss_kappa(ratings: Sequence[Sequence[str]]) -> float:
    """Fleiss' kappa of ``raters x items`` ratings (statsmodels ``aggregate_raters`` +
    ``fleiss_kappa``). Every rater must rate every item; ``nan`` when one category was used."""
    from statsmodels.stats.inter_rater import aggregate_raters
    from statsmodels.stats.inter_rater import fleiss_kappa as _fleiss

    codes, n_cat = _encode(ratings)
    if codes.size == 0 or n_cat < 2 or codes.shape[0] < 2:
        return math.nan
    if np.isnan(codes).any():
        raise ValueError("Fleiss' kappa needs complete ratings; drop items with missing ones")
    table, _ = aggregate_raters(codes.T.astype(int), n_cat=n_cat)
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(_fleiss(table, method="fleiss"))


def krippendorff_alpha(ratings: Sequence[Sequence[str | None]]) -> float:
    """Krippendorff's alpha (nominal) of ``raters x items`` ratings; ``None`` = missing rating
    (a format failure), which alpha handles natively. ``nan`` when fewer than two categories or
    no item has two ratings."""
    import krippendorff

    codes, n_cat = _encode(ratings)
    pairable = (~np.isnan(codes)).sum(axis=0) >= 2 if codes.size else np.array([], bool)
    if n_cat < 2 or not pairable.any():
        return math.nan
    return float(krippendorff.alpha(reliability_data=codes, level_of_measurement="nominal",
                                    value_domain=list(range(n_cat))))


def coincidence_matrix(ratings: Sequence[Sequence[str | None]], categories: Sequence[str]) -> np.ndarray:
    """Krippendorff's coincidence matrix (``K x K``) of ``raters x items``; additive over items."""
    index = {c: k for k, c in enumerate(categories)}
    counts = np.zeros((len(ratings[0]) if len(ratings) else 0, len(categories)))
    for rater in ratings:
        for i, v in enumerate(rater):
            if v is not None:
                counts[i, index[v]] += 1
    m = counts.sum(axis=1)
    keep = m >= 2
    v, m = counts[keep], m[keep]
    pairs = v[:, :, None] * v[:, None, :] - np.einsum("ik,kl->ikl", v, np.eye(len(categories)))
    return (pairs / (m - 1)[:, None, None]).sum(axis=0)


def alpha_from_coincidence(o: np.ndarray) -> float:
    """Nominal alpha from a coincidence matrix: ``1 - (n-1) (n - tr o) / (n^2 - sum n_c^2)``."""
    n = o.sum()
    nc = o.sum(axis=1)
    de = n**2 - (nc**2).sum()
    return float(1 - (n - 1) * (n - np.trace(o)) / de) if n > 1 and de > 0 else math.nan


def percent_agreement(ratings: Sequence[Sequence[str | None]]) -> float:
    """Observed pairwise agreement (share of agreeing rater pairs over pairable items), the raw
    figure to read beside an undefined alpha: 1.0 means "identical, alpha has no variation to use"."""
    agree = total = 0.0
    for item in zip(*ratings):
        vals = [v for v in item if v is not None]
        m = len(vals)
        if m < 2:
            continue
        agree += sum(c * (c - 1) for c in Counter(vals).values()) / 2
        total += m * (m - 1) / 2
    return agree / total if total else math.nan


# ---------------------------------------------------------------- runs of one annotator
def majority_vote(runs: Sequence[Sequence[str] | None]) -> list[str] | None:
    """Token-wise majority over the successful runs of one sentence (ties -> the tag of the
    earliest run among the tied), then made valid IOB2 (an ``I-X`` not after ``B-X``/``I-X``
    becomes ``B-X``), so seqeval strict mode does not silently drop a voted entity."""
    ok = [r for r in runs if r is not None]
    if not ok:
        return None
    out: list[str] = []
    for pos in range(len(ok[0])):
        col = [r[pos] for r in ok]
        counts = Counter(col)
        best = max(counts.values())
        out.append(next(t for t in col if counts[t] == best))
    for i, t in enumerate(out):
        if t.startswith("I-") and (i == 0 or out[i - 1][2:] != t[2:] or out[i - 1] == "O"):
            out[i] = "B-" + t[2:]
    return out


def span_consistency(runs_per_sentence: Sequence[Sequence[Sequence[str] | None]]) -> float:
    """Mean, over every distinct span any run produced, of the share of (successful) runs that
    produced exactly that span (type and boundaries). 1.0 = every run found the same entities;
    ``nan`` when no run produced any entity."""
    shares: list[float] = []
    for runs in runs_per_sentence:
        ok = [entity_spans(r) for r in runs if r is not None]
        if not ok:
            continue
        for span in set().union(*ok):
            shares.append(sum(span in s for s in ok) / len(ok))
    return float(np.mean(shares)) if shares else math.nan


def describe_nan(value: float, what: str = "value") -> str:
    """Plain words for a ``nan`` figure, used by the reports (never print a bare ``nan``)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return f"{what} undefined (all ratings in one category, or nothing to compare)"
    return f"{value:.3f}"


# ---------------------------------------------------------------- helpers
def _check_lengths(gold: Tagging, pred: Tagging) -> None:
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold sentences but {len(pred)} predicted")
    for i, (g, p) in enumerate(zip(gold, pred)):
        if len(g) != len(p):
            raise ValueError(f"sentence {i}: {len(g)} gold tags but {len(p)} predicted")


def _flat(tagging: Tagging, like: Tagging | None = None) -> list[str]:
    if like is not None:
        _check_lengths(like, tagging)
    return [t for sent in tagging for t in sent]


def _encode(ratings: Sequence[Sequence[str | None]]) -> tuple[np.ndarray, int]:
    """``raters x items`` strings -> float codes (``nan`` = missing) and the category count."""
    if len({len(r) for r in ratings}) > 1:
        raise ValueError("every rater must have one rating per item (use None for missing)")
    cats = sorted({v for r in ratings for v in r if v is not None})
    index = {c: float(k) for k, c in enumerate(cats)}
    codes = np.array([[index[v] if v is not None else np.nan for v in r] for r in ratings],
                     dtype=float).reshape(len(ratings), -1)
    return codes, len(cats)
