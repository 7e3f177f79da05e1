"""Every figure of one candidate, from its raw runs on the gold sample.

``evaluate(gold, raw)`` turns what the annotator returned (R runs x S sentences of BIO tags, or
``None`` for a failure) into the numbers the choice rule and the report use. Scoring
policy, stated once:
- a failed sentence in a run counts as all-``O`` for everything measured *against gold* (entity
  F1, token accuracy, Cohen's kappa): a lost annotation is a miss, not a free pass; the failure
  rate is reported beside it;
- for agreement *across runs*, a failed run is a missing rating: Krippendorff's alpha uses the
  remaining runs of that sentence, Fleiss' kappa (which needs complete ratings) uses only the
  sentences that every run tagged, and says how many those were;
- "mean" figures are computed per run and averaged (what one annotation pass delivers, as in the
  loop); "majority" figures score the token-wise majority vote of the runs;
- 95 % confidence intervals are percentile bootstraps over sentences (``n_boot`` resamples,
  seeded): a resample re-sums per-sentence counts/confusion/coincidence matrices, which gives
  exactly the library estimate on the original sample (checked in tests).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from model import agreement as ag


def _ci(values: np.ndarray) -> list[float]:
    v = values[~np.isnan(values)]
    return [float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))] if v.size else [math.nan] * 2


def _f1(c: np.ndarray) -> np.ndarray:
    """F1 from ``(..., 3)`` counts (tp, n_pred, n_gold); nan where nothing to compare."""
    den = c[..., 1] + c[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, 2 * c[..., 0] / np.where(den > 0, den, 1), np.nan)


def _kappa(conf: np.ndarray) -> np.ndarray:
    """Cohen's kappa of ``(..., K, K)`` confusion matrices."""
    n = conf.sum(axis=(-1, -2))
    with np.errstate(divide="ignore", invalid="ignore"):
        po = np.trace(conf, axis1=-2, axis2=-1) / n
        pe = (conf.sum(-1) * conf.sum(-2)).sum(-1) / n**2
        return np.where(pe < 1, (po - pe) / (1 - pe), np.nan)


def _alpha(o: np.ndarray) -> np.ndarray:
    """Nominal alpha of ``(..., K, K)`` coincidence matrices."""
    n = o.sum(axis=(-1, -2))
    de = n**2 - (o.sum(-1) ** 2).sum(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(de > 0, 1 - (n - 1) * (n - np.trace(o, axis1=-2, axis2=-1)) / de, np.nan)


def _fleiss_parts(runs: Sequence[Sequence[str]], index: dict[str, int]) -> np.ndarray:
    """Additive Fleiss pieces of one sentence: [sum_i P_i, n_items, category totals...]."""
    k = len(index)
    counts = np.zeros((len(runs[0]), k))
    for r in runs:
        for i, t in enumerate(r):
            counts[i, index[t]] += 1
    m = len(runs)
    p_i = ((counts**2).sum(1) - m) / (m * (m - 1))
    return np.concatenate([[p_i.sum(), len(p_i)], counts.sum(0)])


def _fleiss(parts: np.ndarray, m: int) -> np.ndarray:
    p_bar = parts[..., 0] / parts[..., 1]
    pj = parts[..., 2:] / (parts[..., 1:2] * m)
    pe = (pj**2).sum(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(pe < 1, (p_bar - pe) / (1 - pe), np.nan)


def evaluate(gold: Sequence[Sequence[str]], raw: dict, *, n_boot: int = 1000,
             seed: int = 42) -> dict:
    """All figures of one candidate. ``raw["samples"][s][r]`` is run ``r``'s tags for sentence
    ``s`` (``None`` = format failure); optional ``repaired``, ``latency_s`` (same shape),
    ``tokens_in``, ``tokens_out``, ``cost_usd`` (totals over all calls)."""
    samples = raw["samples"]
    n_sent, n_runs = len(gold), len(samples[0]) if samples else 0
    if len(samples) != n_sent or n_runs == 0:
        raise ValueError("raw samples must hold >= 1 run for every gold sentence")
    runs = [[samples[s][r] for s in range(n_sent)] for r in range(n_runs)]
    filled = [[t if t is not None else ["O"] * len(g) for t, g in zip(run, gold)] for run in runs]
    failures = sum(t is None for run in runs for t in run)
    vote = [ag.majority_vote(samples[s]) or ["O"] * len(gold[s]) for s in range(n_sent)]

    tags = sorted({t for sent in gold for t in sent} | {t for run in filled for s in run for t in s})
    index = {t: k for k, t in enumerate(tags)}
    types = sorted({t[2:] for t in tags if t != "O"})
    rng = np.random.default_rng(seed)
    weights = np.stack([np.bincount(rng.integers(0, n_sent, n_sent), minlength=n_sent)
                        for _ in range(n_boot)]).astype(float)      # (B, S) multiplicities

    # entity F1 vs gold, per run and of the vote
    counts = np.stack([ag.entity_counts(gold, run) for run in filled])          # (R, S, 3)
    vote_counts = ag.entity_counts(gold, vote)                                  # (S, 3)
    per_run = [ag.entity_scores(gold, run) for run in filled]
    f1_runs = np.array([s["f1"] for s in per_run])
    boot_f1 = np.nanmean(_f1(np.einsum("bs,rsc->rbc", weights, counts)), axis=0)
    vote_scores = ag.entity_scores(gold, vote)
    per_type = {}
    for t in types:
        vals = [s["per_type"].get(t, {}).get("f1", math.nan) for s in per_run]
        per_type[t] = {"f1_mean": _nanmean(vals),
                       "f1_majority": vote_scores["per_type"].get(t, {}).get("f1", math.nan),
                       "support": sum(1 for sent in gold for x in sent if x == f"B-{t}")}

    # token level vs gold
    flat_gold = [t for s in gold for t in s]
    conf = np.zeros((n_runs, n_sent, len(tags), len(tags)))
    for r, run in enumerate(filled):
        for s, (g, p) in enumerate(zip(gold, run)):
            np.add.at(conf[r, s], ([index[x] for x in g], [index[x] for x in p]), 1)
    kappa_runs = [ag.cohen_kappa(flat_gold, [t for s in run for t in s]) for run in filled]
    boot_kappa = np.nanmean(_kappa(np.einsum("bs,rskl->rbkl", weights, conf)), axis=0)

    # agreement across runs (self) and with gold as one more rater
    ratings = [[t for s in range(n_sent) for t in (run[s] or [None] * len(gold[s]))] for run in runs]
    alpha_self = ag.krippendorff_alpha(ratings)
    alpha_gold = ag.krippendorff_alpha(ratings + [flat_gold])
    coinc_self = np.stack([_coinc([run[s] for run in runs], tags) for s in range(n_sent)])
    coinc_gold = np.stack([_coinc([run[s] for run in runs] + [gold[s]], tags) for s in range(n_sent)])
    complete = [s for s in range(n_sent) if all(run[s] is not None for run in runs)]
    fleiss = math.nan
    boot_fleiss = np.full(n_boot, math.nan)
    if complete and n_runs >= 2:
        fleiss = ag.fleiss_kappa([[t for s in complete for t in run[s]] for run in runs])
        parts = np.zeros((n_sent, 2 + len(tags)))
        for s in complete:
            parts[s] = _fleiss_parts([run[s] for run in runs], index)
        boot_fleiss = _fleiss(weights @ parts, n_runs)

    calls = n_sent * n_runs
    usage = np.array([u for row in raw.get("usage", []) for u in row], dtype=float).reshape(-1, 3)
    lats = np.array([x if x is not None else np.nan for row in raw.get("latency_s", []) for x in row])
    paid = usage[:, 0] + usage[:, 1] > 0 if len(usage) == calls else np.ones(0, bool)
    if paid.any():
        # a cache hit costs 0 tokens; only calls that were really made tell what 1,000 cost
        per_call = usage[paid].mean(axis=0)
        lat = lats[paid] if len(lats) == calls else lats
    elif len(usage):
        # every answer came from the cache (or the server reports no usage): cost unknown here
        per_call = np.full(3, np.nan)
        lat = lats[lats > 0] if len(lats) else lats
    else:
        per_call = np.array([raw.get("tokens_in", 0), raw.get("tokens_out", 0),
                             raw.get("cost_usd", 0.0)], dtype=float) / calls
        lat = lats
    lat = lat[~np.isnan(lat)] if len(lat) else lat
    repaired = [x for row in raw.get("repaired", []) for x in row]
    errs = [e for row in raw.get("errors", []) for cell in row for e in (cell or [])]
    return {
        "n_sentences": n_sent, "n_tokens": len(flat_gold), "runs": n_runs, "types": types,
        "f1_mean": _nanmean(f1_runs), "f1_std": float(np.nanstd(f1_runs)),
        "f1_ci": _ci(boot_f1), "f1_runs": f1_runs.tolist(),
        "precision_mean": _nanmean([s["precision"] for s in per_run]),
        "recall_mean": _nanmean([s["recall"] for s in per_run]),
        "f1_majority": vote_scores["f1"],
        "f1_majority_ci": _ci(_f1(weights @ vote_counts)),
        "per_type": per_type,
        "token_accuracy_mean": _nanmean([ag.token_accuracy(gold, run) for run in filled]),
        "token_accuracy_majority": ag.token_accuracy(gold, vote),
        "entity_token_accuracy_mean": _nanmean([ag.entity_token_accuracy(gold, run) for run in filled]),
        "kappa_gold_mean": _nanmean(kappa_runs), "kappa_gold_ci": _ci(boot_kappa),
        "kappa_gold_majority": ag.cohen_kappa(flat_gold, [t for s in vote for t in s]),
        "fleiss_kappa_runs": fleiss, "fleiss_kappa_runs_ci": _ci(boot_fleiss),
        "fleiss_sentences_used": len(complete),
        "alpha_runs": alpha_self, "alpha_runs_ci": _ci(_alpha(np.einsum("bs,skl->bkl", weights, coinc_self))),
        "alpha_with_gold": alpha_gold,
        "alpha_with_gold_ci": _ci(_alpha(np.einsum("bs,skl->bkl", weights, coinc_gold))),
        "percent_agreement_runs": ag.percent_agreement(ratings),
        "span_consistency": ag.span_consistency(samples),
        "format_failure_rate": failures / calls,
        "repair_rate": (sum(bool(x) for x in repaired) / calls) if repaired else 0.0,
        "sentences_failed_any_run": sum(any(t is None for t in samples[s]) for s in range(n_sent)),
        "request_error_rate": sum("LLM request" in e or "LLM server" in e for e in errs) / calls,
        "calls_paid": int(paid.sum()), "calls_from_cache": int(len(paid) - paid.sum()),
        "latency_p50_s": float(np.percentile(lat, 50)) if len(lat) else math.nan,
        "latency_p95_s": float(np.percentile(lat, 95)) if len(lat) else math.nan,
        "tokens_in_per_1k": float(per_call[0] * 1000),
        "tokens_out_per_1k": float(per_call[1] * 1000),
        "cost_per_1k_usd": float(per_call[2] * 1000),
        "bootstrap": {"n_boot": n_boot, "seed": seed, "unit": "sentence", "level": 0.95},
    }


def _coinc(sentence_runs: list, tags: list[str]) -> np.ndarray:
    """Coincidence matrix of one sentence's runs (``None`` runs are missing raters)."""
    length = next((len(r) for r in sentence_runs if r is not None), 0)
    ratings = [r if r is not None else [None] * length for r in sentence_runs]
    if length == 0:
        return np.zeros((len(tags), len(tags)))
    return ag.coincidence_matrix(ratings, tags)


def _nanmean(values) -> float:
    arr = np.asarray(list(values), dtype=float)
    return float(np.nanmean(arr)) if arr.size and not np.isnan(arr).all() else math.nan
