"""Offline active-learning simulation: learning curves per strategy, oracle and seed.

Run ``python -m model.simulation --help``. Each arm (strategy x oracle) starts from the same seed set
per seed, retrains the model from scratch on all labels so far every round, re-scores the whole
unlabelled pool, buys the next batch from the oracle and records test F1. Random sampling is
always an arm (weakness 3 of the reference code). Queried items leave the pool, which is asserted
every round (weakness 2). Metrics: seqeval entity F1 (strict spans) and the paper's entity-token
accuracy (tokens whose gold tag is not O), so both sides of weakness 4 are visible.

Oracles: ``gold`` (the dataset's labels, standing for a human) or ``llm`` (an OpenAI-compatible
endpoint through ``model.llm.annotator``, e.g. the fake server with a ``noisy-0.14`` persona).
``--routing`` adds an ``llm+route`` arm: LLM labels are accepted only where the LLM is
self-consistent and the current local model agrees with it; the rest go to a human (gold), who is
paid for (a review of the LLM's pre-annotation, at the cost model's review price).
``--route-per-dollar`` adds ``llm+route-per-usd``: the same routing with thresholds chosen for the
most expected label value per dollar (``fit_thresholds_per_dollar``). ``--prelabel PICKER ...``
adds ``prelabel+<picker>`` arms: the LLM pre-labels ``--prelabel-fraction`` of the pool up front
(paid then), the model trains on every LLM label plus the human-reviewed ones, and each round
humans review the ``--batch-size`` pre-labelled tasks the picker chooses (``uncertainty``: the
arm's strategy on the local model; ``self_consistency``: lowest LLM self-consistency first;
``disagreement``: lowest LLM-vs-model span agreement first).

Money (``model.simulation.cost``): every row has cumulative ``human_cost_usd`` (from scratch x
price + reviews x price x ratio by correctness), ``llm_cost_usd`` (the annotator's reported
usage at the ``--llm-profile`` prices) and ``total_cost_usd``; the summary gives each arm's F1 at
``--budgets`` (the last round that fits; never extrapolated) and prints the cost model.
"""
from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from model.active import ModelOutputs, RoutingPolicy, fit_thresholds, get_strategy, strategy_names
from model.active.candidates import sample_pool
from model.active.routing import fit_thresholds_per_dollar
from model.sampling import entity_rich_indices, random_indices
from model.simulation.cost import (DEFAULT_BUDGETS, HUMAN_COST_PER_SENTENCE, PROFILES,
                                 REVIEW_RATIO_CORRECT, REVIEW_RATIO_EDIT, CostModel, get_profile)
from model.simulation.data import (MODEL_KINDS, Data, evaluate, fit_model, load_aux, load_data,
                                   served_part)
from model.simulation.oracles import PICKERS, GoldOracle, PreLabels, buy_labels, make_llm_oracle
from model.shared_data import MASAKHANER2

ROUTE_PER_USD = "llm+route-per-usd"
PRELABEL = "prelabel+"   # oracle name prefix of the pre-label + review arms, + the picker


def model_outputs(data: Data, model: Any, X: Sequence) -> ModelOutputs:
    """Lazy outputs of the served model's tagger or classifier on pool items ``X``."""
    if data.task == "ner":
        return ModelOutputs.from_tagger(served_part(model), X)
    return ModelOutputs.from_classifier(served_part(model), X)


@dataclass
class Config:
    task: str = "ner"
    data: str = str(MASAKHANER2 / "hau")
    model: str = "crf"
    strategies: list[str] = field(default_factory=lambda: ["least_confidence"])
    oracles: list[str] = field(default_factory=lambda: ["gold"])
    routing: bool = False
    seed_size: int = 100
    seed_sampler: str = "random"
    batch_size: int = 100
    rounds: int = 10
    seeds: list[int] = field(default_factory=lambda: [0])
    max_pool: int | None = None
    max_test: int | None = None
    full_f1: float | None = None
    model_params: dict[str, Any] = field(default_factory=dict)
    word_clusters: bool = True             # NER: word classes from the pool's raw text (served default)
    ner_backbone: str | None = None        # --model backbone: local Hugging Face model folder
    min_consistency: float | None = None   # None (both): thresholds fitted live
    min_agreement: float | None = None
    route_target: float = 0.9
    llm_model: str | None = None
    fake_llm: str | None = None
    llm_samples: int = 3
    human_cost_per_sentence: float = HUMAN_COST_PER_SENTENCE
    review_ratio_correct: float = REVIEW_RATIO_CORRECT
    review_ratio_edit: float = REVIEW_RATIO_EDIT
    llm_profile: str | None = None          # model.simulation.cost.PROFILES: persona + prices
    llm_price_in_per_1m: float | None = None   # None: the profile's, else LLM_PRICE_IN_PER_1K's
    llm_price_out_per_1m: float | None = None
    budgets: list[float] = field(default_factory=lambda: list(DEFAULT_BUDGETS))
    max_cost_usd: float | None = None       # an arm stops after its first round above this
    prelabel_pickers: list[str] = field(default_factory=list)
    prelabel_fraction: float = 0.5          # of the non-seed pool, pre-labelled up front
    route_per_dollar: bool = False
    route_wrong_penalty: float = 1.0        # fit_thresholds_per_dollar's wrong_penalty
    random_extend: list[int] = field(default_factory=list)
    # > 0: an informed strategy picks from the sample a served retrain scores (RESCORE_CANDIDATES:
    # windows of the pool in listing order, model.active.candidates), not from the whole pool;
    # random stays uniform over the pool (what Label Studio's own random queue serves). The
    # backend also re-scores its previous queue (QUEUE_SIZE tasks); with batch_size >= QUEUE_SIZE
    # that queue is all labelled by the next round, so the sample alone is what it scores
    candidates: int = 0
    aux_data: list[str] = field(default_factory=list)  # CoNLL files always trained on, never bought
    aux_max: int | None = None                         # seeded sample of them (None: all)
    jobs: int = 1                                      # (seed, arm) runs in parallel processes
    # False only to extend the strategy arms of a saved run whose random arm is kept
    # (``benchmarks.simulate_al --extend``); a run's own result always has random sampling
    random_arm: bool = True
    out: str = "benchmarks/out/simulate"

    def arms(self) -> list[tuple[str, str]]:
        """(strategy, oracle) pairs; random always present, routing arms per strategy."""
        strategies = list(dict.fromkeys(["random", *self.strategies]))
        if not self.random_arm:
            strategies = [s for s in strategies if s != "random"]
        arms = [(s, o) for o in self.oracles for s in strategies]
        informed = [s for s in strategies if s != "random"] or ["random"]
        if self.routing:
            arms += [(s, "llm+route") for s in informed]
        if self.route_per_dollar:
            arms += [(s, ROUTE_PER_USD) for s in informed]
        arms += [(s, PRELABEL + p) for p in self.prelabel_pickers for s in informed]
        return arms

    def language(self) -> str:
        """The data folder's name (``hau``, ``yor`` ...): the key of a profile's figures."""
        return Path(self.data).name

    def persona(self) -> str | None:
        """The fake-server persona: ``fake_llm`` when given (e.g. ``noisy-0.1`` with a profile's
        prices), else the profile's for this language (e.g. ``systematic-0.509``), else None."""
        if self.fake_llm or not self.llm_profile:
            return self.fake_llm
        return get_profile(self.llm_profile).persona(self.language())

    def cost_model(self) -> CostModel:
        """Prices: explicit ones, else the profile's, else the ``LLM_PRICE_*`` settings."""
        import os

        from model.llm.config import LLMConfig
        env = LLMConfig.from_env(os.environ)
        p_in, p_out = env.price_in_per_1k * 1000, env.price_out_per_1k * 1000
        if self.llm_profile:
            prof = get_profile(self.llm_profile)
            prof.score(self.language())  # a language the profile has no figure for: an error
            p_in, p_out = prof.price_in_per_1m, prof.price_out_per_1m
        return CostModel(self.human_cost_per_sentence, self.review_ratio_correct,
                         self.review_ratio_edit,
                         p_in if self.llm_price_in_per_1m is None else self.llm_price_in_per_1m,
                         p_out if self.llm_price_out_per_1m is None else self.llm_price_out_per_1m,
                         self.llm_samples, self.llm_profile)


def _fit(cfg: Config, data: Data, idx: Sequence[int], labels: dict[int, list], seed: int) -> Any:
    """The served ``LocalModel``, fresh, on the auxiliary corpora (free, not counted) + every
    label bought so far; word classes from the whole pool's text."""
    return fit_model(cfg.model, data, idx, labels, seed=seed, params=cfg.model_params,
                     word_clusters=cfg.word_clusters, ner_backbone=cfg.ner_backbone)


def _fresh_counts(n_seed: int) -> dict[str, int]:
    """Label counters of one arm; the seed set is labelled by humans from scratch."""
    return {"human": n_seed, "reviewed_correct": 0, "reviewed_edit": 0, "llm": 0,
            "auto_accepted": 0, "llm_failed": 0, "llm_correct_tokens": 0, "llm_tokens_total": 0}


def _row(cost: CostModel, strategy_name: str, oracle_name: str, seed: int, r: int,
         labelled: Sequence[int], n_tokens: np.ndarray, counts: dict[str, int], llm: Any,
         metrics: dict[str, float], fit_s: float, pool_left: int) -> dict:
    """One round's record: labels by source, test metrics, cumulative dollars by the cost model."""
    usage = llm.usage() if llm is not None and oracle_name != "gold" else {}
    reviewed = counts["reviewed_correct"] + counts["reviewed_edit"]
    human_usd = cost.human(counts["human"]) + cost.review(counts["reviewed_correct"],
                                                          counts["reviewed_edit"])
    llm_usd = float(usage.get("cost_usd", 0.0))
    return {"strategy": strategy_name, "oracle": oracle_name, "seed": seed, "round": r,
            "n_labeled": len(labelled), "n_tokens_labeled": int(n_tokens[list(labelled)].sum()),
            "n_human": counts["human"] + reviewed, "n_human_scratch": counts["human"],
            "n_reviewed": reviewed, "n_reviewed_correct": counts["reviewed_correct"],
            "n_llm": counts["llm"], "n_auto_accepted": counts["auto_accepted"],
            "n_llm_failed": counts["llm_failed"],
            "llm_label_token_acc": (counts["llm_correct_tokens"] / counts["llm_tokens_total"])
            if counts["llm_tokens_total"] else None,
            **metrics, "llm_tokens_in": usage.get("tokens_in", 0),
            "llm_tokens_out": usage.get("tokens_out", 0), "llm_cost_usd": llm_usd,
            "human_cost_usd": human_usd, "total_cost_usd": human_usd + llm_usd,
            "n_pool_left": int(pool_left), "fit_s": round(fit_s, 2)}


def _over_budget(cfg: Config, row: dict) -> bool:
    """An arm stops once it has spent more than ``max_cost_usd``: every budget up to it is read."""
    return cfg.max_cost_usd is not None and row["total_cost_usd"] > cfg.max_cost_usd


def run_arm(cfg: Config, data: Data, strategy_name: str, oracle_name: str, seed: int,
            seed_idx: np.ndarray, oracles: dict[str, Any], progress: Any = None) -> list[dict]:
    """One learning curve; returns one row per round."""
    if oracle_name.startswith(PRELABEL):
        return run_prelabel_arm(cfg, data, strategy_name, oracle_name, seed, seed_idx, oracles,
                                progress)
    rng = np.random.default_rng(1000 + seed)
    strategy = get_strategy(strategy_name, seed=seed) if strategy_name == "random" \
        else get_strategy(strategy_name)
    gold = oracles["gold"]
    cost = cfg.cost_model()
    labels: dict[int, list] = {int(i): gold.label(int(i)) for i in seed_idx}  # human seed set
    labelled = [int(i) for i in seed_idx]
    counts = _fresh_counts(len(labelled))
    llm = oracles.get("llm")
    if oracle_name != "gold":
        llm.start_arm(f"{strategy_name}-{oracle_name}-seed{seed}")
    fixed = cfg.min_consistency is not None and cfg.min_agreement is not None
    policy = RoutingPolicy(cfg.min_consistency, cfg.min_agreement) if fixed \
        else RoutingPolicy.never()
    # reviewed tasks: (consistency, agreement, LLM quality, review price)
    evidence: list[tuple[float, float, float, float]] = []
    rows = []
    n_tokens = _token_counts(data)
    targets = _targets(cfg, strategy_name, len(labelled))
    rotation = total = 0  # the served candidate sample's state (cfg.candidates)
    for r in range(len(targets) + 1):
        t0 = time.perf_counter()
        model = _fit(cfg, data, labelled, labels, seed)
        fit_s = time.perf_counter() - t0
        metrics = evaluate(data, served_part(model))
        pool = np.setdiff1d(np.arange(len(data.X)), labelled)
        rows.append(_row(cost, strategy_name, oracle_name, seed, r, labelled, n_tokens,
                         counts, llm, metrics, fit_s, pool.size))
        if progress is not None:
            progress.update(1)
            progress.set_postfix(arm=f"{strategy_name}/{oracle_name}", f1=f"{metrics['f1']:.3f}")
        if r == len(targets) or pool.size == 0 or _over_budget(cfg, rows[-1]):
            break
        t1 = time.perf_counter()
        outputs = model_outputs(data, model, data.X)  # lazy: random never computes it
        offered = pool
        if cfg.candidates and strategy_name != "random":
            sample, rotation, total = sample_pool(pool, cfg.candidates, rotation, total)
            offered = np.array(sorted(sample), dtype=pool.dtype)
        picked = strategy.query(outputs, offered, min(targets[r] - len(labelled), offered.size),
                                indices_labeled=np.array(labelled), rng=rng)
        rows[-1]["query_s"] = round(time.perf_counter() - t1, 2)
        assert not set(map(int, picked)) & set(labelled), "an item was queried twice"
        assert len(set(map(int, picked))) == len(picked), "duplicate items in one batch"
        buy_labels(data, oracle_name, [int(i) for i in picked], served_part(model), oracles,
                   policy, labels, counts, evidence, cost)
        if oracle_name.startswith("llm+route") and not fixed:  # thresholds from live evidence
            policy = _refit_policy(cfg, oracle_name, evidence, rows[-1], llm,
                                   len(labelled) + len(picked) - len(seed_idx))
            rows[-1]["policy"] = json.dumps(policy.to_dict())
        labelled.extend(int(i) for i in picked)
    return rows


def _refit_policy(cfg: Config, oracle_name: str, evidence: list[tuple[float, float, float, float]],
                  row: dict, llm: Any, n_sent_to_llm: int) -> RoutingPolicy:
    """``llm+route``: the loosest thresholds reaching ``route_target`` (``fit_thresholds``);
    ``llm+route-per-usd``: the most label value per dollar (``fit_thresholds_per_dollar``), with
    the LLM's measured cost per sentence so far."""
    c, a, q, rc = (np.array(v) for v in zip(*evidence)) if evidence else ([], [], [], [])
    if oracle_name != ROUTE_PER_USD:
        return fit_thresholds(c, a, q, cfg.route_target, min_support=20)
    per_sentence = llm.usage()["cost_usd"] / max(n_sent_to_llm, 1)
    row["llm_cost_per_sentence"] = per_sentence
    return fit_thresholds_per_dollar(c, a, q, rc, per_sentence,
                                     wrong_penalty=cfg.route_wrong_penalty, min_support=20)


def run_prelabel_arm(cfg: Config, data: Data, strategy_name: str, oracle_name: str, seed: int,
                     seed_idx: np.ndarray, oracles: dict[str, Any],
                     progress: Any = None) -> list[dict]:
    """Pre-label + review: the LLM labels ``prelabel_fraction`` of the non-seed pool up front
    (a seeded sample; its dollars are in round 0), the model trains on the human seed set + every
    LLM label + the reviews, and each round humans review ``batch_size`` pre-labelled tasks the
    picker chooses (a review replaces the LLM label with gold, paid at the review price). A
    reviewed task is never picked again (asserted in ``PreLabels.review``)."""
    picker = PICKERS[oracle_name[len(PRELABEL):]]
    rng = np.random.default_rng(1000 + seed)
    strategy = get_strategy(strategy_name, seed=seed) if strategy_name == "random" \
        else get_strategy(strategy_name)
    gold, llm = oracles["gold"], oracles["llm"]
    cost = cfg.cost_model()
    llm.start_arm(f"{strategy_name}-{oracle_name}-seed{seed}")
    labels: dict[int, list] = {int(i): gold.label(int(i)) for i in seed_idx}
    counts = _fresh_counts(len(labels))
    rest = np.setdiff1d(np.arange(len(data.X)), seed_idx)
    k = int(round(cfg.prelabel_fraction * rest.size))
    pre_idx = np.sort(np.random.default_rng(2000 + seed).choice(rest, k, replace=False))
    pre = PreLabels(data, pre_idx, llm)
    counts["llm_failed"] = len(pre.failed)
    for i, tags in pre.tags.items():
        labels[i] = tags
        g = gold.label(i)
        counts["llm_correct_tokens"] += sum(a == b for a, b in zip(tags, g))
        counts["llm_tokens_total"] += len(g)
    labelled = [int(i) for i in seed_idx] + sorted(pre.tags)
    n_tokens = _token_counts(data)
    rows = []
    for r in range(cfg.rounds + 1):
        counts["llm"] = len(pre.tags) - len(pre.reviewed)  # LLM labels still in the training set
        t0 = time.perf_counter()
        model = _fit(cfg, data, labelled, labels, seed)
        fit_s = time.perf_counter() - t0
        metrics = evaluate(data, served_part(model))
        candidates = pre.candidates()
        rows.append(_row(cost, strategy_name, oracle_name, seed, r, labelled, n_tokens,
                         counts, llm, metrics, fit_s, candidates.size))
        if progress is not None:
            progress.update(1)
            progress.set_postfix(arm=f"{strategy_name}/{oracle_name}", f1=f"{metrics['f1']:.3f}")
        if r == cfg.rounds or candidates.size == 0 or _over_budget(cfg, rows[-1]):
            break
        t1 = time.perf_counter()
        picked = picker(pre, candidates, min(cfg.batch_size, candidates.size), served_part(model),
                        model_outputs(data, model, data.X), strategy, np.array(labelled), rng)
        rows[-1]["query_s"] = round(time.perf_counter() - t1, 2)
        assert set(picked) <= set(map(int, candidates)), "a picker chose outside its candidates"
        pre.review(picked, gold, labels, counts)
    return rows


def _token_counts(data: Data) -> np.ndarray:
    """Tokens (whitespace words for texts) per pool item: a strategy that buys long sentences
    pays more per label, so every row records tokens labelled beside sentences labelled."""
    return np.array([len(x) if data.task == "ner" else len(str(x).split()) for x in data.X],
                    dtype=np.int64)


def _targets(cfg: Config, strategy_name: str, n_seed: int) -> list[int]:
    """Labelled-set sizes after each round; random continues to ``cfg.random_extend`` sizes so
    that "labels random needs" is measured rather than bounded (random needs no pool scoring)."""
    t = [n_seed + cfg.batch_size * k for k in range(1, cfg.rounds + 1)]
    if strategy_name == "random":
        t += sorted(x for x in cfg.random_extend if x > (t[-1] if t else n_seed))
    return t


def full_data_f1(cfg: Config, data: Data, with_aux: bool = True) -> float:
    """Test F1 of the same model on every pool label (plus the auxiliary corpora unless told not
    to): the ceiling "95 % of full-data F1" is read against."""
    full = Data(data.task, data.X, data.Y, data.X_test, data.Y_test, data.labels,
                data.X_aux if with_aux else [], data.Y_aux if with_aux else [])
    model = fit_model(cfg.model, full, range(len(data.X)), dict(enumerate(data.Y)), seed=0,
                      params=cfg.model_params, word_clusters=cfg.word_clusters,
                      ner_backbone=cfg.ner_backbone)
    return evaluate(data, served_part(model))["f1"]


def run(cfg: Config) -> dict[str, Any]:
    """Run every arm x seed; write CSV, JSON and PNG under ``cfg.out``; return the result dict."""
    from tqdm import tqdm

    from model.simulation.report import summarise, write_outputs
    needs_llm = any(o != "gold" for _, o in cfg.arms())
    if cfg.jobs > 1 and needs_llm:
        raise ValueError("--jobs > 1 needs gold oracles only (an LLM oracle holds a server "
                         "connection and a cache that processes cannot share)")
    cost = cfg.cost_model()  # fails fast on an unknown profile or a language it lacks
    for p in cfg.prelabel_pickers:
        if p not in PICKERS:
            raise ValueError(f"unknown pre-label picker {p!r}; expected one of {sorted(PICKERS)}")
    data = load_data(cfg.task, cfg.data, cfg.max_pool, cfg.max_test)
    if cfg.aux_data:
        load_aux(data, cfg.aux_data, cfg.aux_max)
    oracles: dict[str, Any] = {"gold": GoldOracle(data.Y)}
    if needs_llm:
        oracles["llm"] = make_llm_oracle(data, cfg.data, cfg.llm_model, cfg.llm_samples,
                                         cfg.persona(), str(Path(cfg.out) / "llm_store"),
                                         (cost.llm_price_in_per_1m, cost.llm_price_out_per_1m))
    t0 = time.perf_counter()
    full = cfg.full_f1 if cfg.full_f1 is not None else full_data_f1(cfg, data)
    full_s = time.perf_counter() - t0
    # the baseline the auxiliary corpora must beat, measured in the same run: pool labels only
    pool_only = full_data_f1(cfg, data, with_aux=False) \
        if cfg.aux_data and cfg.full_f1 is None else None
    rows: list[dict] = []
    arms = cfg.arms()
    try:
        rows = _run_all(cfg, data, arms, oracles, tqdm)
    finally:
        if "llm" in oracles:
            oracles["llm"].close()
    result = {"config": asdict(cfg), "pool_size": len(data.X), "test_size": len(data.X_test),
              "full_data_f1": full, "full_data_f1_given": cfg.full_f1 is not None,
              "full_data_fit_s": round(full_s, 1), "aux_size": len(data.X_aux),
              "pool_only_full_data_f1": pool_only, "cost_model": cost.to_dict(),
              "llm_persona": cfg.persona() if needs_llm else None, "rows": rows}
    result["summary"] = summarise(result)
    write_outputs(result, Path(cfg.out))
    return result


def _seed_set(cfg: Config, data: Data, seed: int) -> np.ndarray:
    """The human seed set of every arm for ``seed``: random, or the paper's entity-rich sample
    (``model.sampling``, the selection run's sampler) filled up at random when fewer sentences
    qualify than asked for."""
    if cfg.seed_size > len(data.X):
        raise ValueError(f"asked for {cfg.seed_size} seed items from a pool of {len(data.X)}")
    if cfg.seed_sampler == "entity-rich" and data.task == "ner":
        idx, _ = entity_rich_indices(data.Y, cfg.seed_size, seed)
        rest = np.setdiff1d(np.arange(len(data.X)), idx)
        fill = np.random.default_rng(seed).choice(rest, cfg.seed_size - len(idx), replace=False)
        return np.array([*idx, *fill], dtype=np.int64)
    return np.array(random_indices(len(data.X), cfg.seed_size, seed), dtype=np.int64)


def _run_all(cfg: Config, data: Data, arms: list[tuple[str, str]], oracles: dict[str, Any],
             tqdm: Any) -> list[dict]:
    """Every (seed, arm) run, in order; with ``cfg.jobs > 1`` in forked worker processes."""
    runs = [(seed, s, o) for seed in cfg.seeds for s, o in arms]
    total = sum((cfg.rounds if o.startswith(PRELABEL) else len(_targets(cfg, s, cfg.seed_size)))
                + 1 for _, s, o in runs)
    with tqdm(total=total, desc="simulate", unit="round") as bar:
        if cfg.jobs <= 1 or len(runs) == 1:
            return [row for seed, s, o in runs
                    for row in run_arm(cfg, data, s, o, seed, _seed_set(cfg, data, seed),
                                       oracles, bar)]
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor
        global _FORKED
        _FORKED = (cfg, data, oracles)  # inherited by fork, not pickled: the data can be large
        with ProcessPoolExecutor(min(cfg.jobs, len(runs)),
                                 mp_context=multiprocessing.get_context("fork")) as ex:
            futures = [ex.submit(_run_forked, seed, s, o) for seed, s, o in runs]
            results = []
            for f in futures:  # in submission order, so rows come out as in a serial run
                results.append(f.result())
                bar.update(len(results[-1]))
        return [row for res in results for row in res]


_FORKED: tuple[Config, Data, dict[str, Any]] | None = None


def _run_forked(seed: int, strategy_name: str, oracle_name: str) -> list[dict]:
    import torch
    torch.set_num_threads(1)
    cfg, data, oracles = _FORKED  # type: ignore[misc]
    return run_arm(cfg, data, strategy_name, oracle_name, seed, _seed_set(cfg, data, seed),
                   oracles)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m model.simulation", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", choices=["ner", "textcat"], default="ner")
    p.add_argument("--data", default=str(MASAKHANER2 / "hau"),
                   help="folder with train/test .txt (CoNLL) or .tsv (MasakhaNEWS)")
    p.add_argument("--model", choices=MODEL_KINDS, default="crf",
                   help="the served model (model.local.LocalModel) to retrain each round: crf = "
                        "CRFSuiteTagger, tagger = NERTagger, backbone = BackboneTagger on "
                        "--ner-backbone; textcat = TextClassifier")
    p.add_argument("--no-word-clusters", action="store_true",
                   help="NER: no word classes from the pool's raw text (the crf is then the "
                        "shared/README reference CRF)")
    p.add_argument("--ner-backbone", default=None, metavar="DIR",
                   help="local Hugging Face token-classification model for --model backbone")
    p.add_argument("--model-param", action="append", default=[], metavar="KEY=VALUE",
                   help="model hyper-parameter (JSON value), e.g. max_epochs=15")
    p.add_argument("--strategies", nargs="+", default=["least_confidence"],
                   help=f"query strategies (random is always added): {', '.join(strategy_names())}")
    p.add_argument("--oracle", nargs="+", choices=["gold", "llm"], default=["gold"])
    p.add_argument("--routing", action="store_true",
                   help="add an llm+route arm: auto-accept consistent LLM labels the model agrees "
                        "with, send the rest to a human")
    p.add_argument("--min-consistency", type=float, default=None,
                   help="fixed routing threshold t1 (with --min-agreement); default: both fitted "
                        "each round on the tasks humans reviewed so far")
    p.add_argument("--min-agreement", type=float, default=None, help="fixed routing threshold t2")
    p.add_argument("--route-target", type=float, default=0.9,
                   help="live fitting: mean LLM span F1 vs human the accepted tasks must reach")
    p.add_argument("--llm-model", default=None, help="LLM_MODEL override, e.g. noisy-0.14")
    p.add_argument("--fake-llm", default=None, metavar="PERSONA",
                   help="simulate the LLM offline: the devtools.fakellm server with this persona "
                        "(e.g. noisy-0.14 ~ the paper's 0.86 token accuracy) on the gold labels")
    p.add_argument("--llm-samples", type=int, default=3, help="LLM samples for self-consistency")
    p.add_argument("--seed-size", type=int, default=100)
    p.add_argument("--seed-sampler", choices=["random", "entity-rich"], default="random")
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--random-extend", type=int, nargs="*", default=[], metavar="N",
                   help="extra labelled-set sizes for the random arm beyond the last round "
                        "(cheap: random needs no pool scoring), e.g. 2000 3000 4000")
    p.add_argument("--candidates", type=int, default=0, metavar="N",
                   help="informed strategies pick from the sample a served retrain scores "
                        "(RESCORE_CANDIDATES: windows of the pool in listing order), not from the "
                        "whole pool; 0 = the whole pool (default)")
    p.add_argument("--aux-data", nargs="*", default=[], metavar="CONLL",
                   help="labelled CoNLL files of other languages (e.g. "
                        "../shared/data/masakhaner2/pcm/train.txt) added to every training set: "
                        "never in the pool, never counted as labels; the run also reports the "
                        "full-data F1 without them")
    p.add_argument("--aux-max", type=int, default=None,
                   help="use a seeded random sample of this many auxiliary sentences")
    p.add_argument("--jobs", type=int, default=1,
                   help="run (seed, arm) pairs in this many processes (gold oracle only)")
    p.add_argument("--max-pool", type=int, default=None, help="subsample the train pool")
    p.add_argument("--max-test", type=int, default=None, help="subsample the test set")
    p.add_argument("--full-f1", type=float, default=None,
                   help="full-data F1 measured earlier with the same model (skips the full-data "
                        "fits, with and without --aux-data)")
    p.add_argument("--human-cost-per-sentence", type=float, default=HUMAN_COST_PER_SENTENCE,
                   help="USD per human-labelled sentence. Default 0.036 = 3 Mechanical Turk "
                        "workers x $0.012, SageMaker Ground Truth's NER rate per unit and worker "
                        "(https://www.wring.co/blog/aws-sagemaker-ground-truth-pricing-guide); "
                        "a lower bound, fluent annotators cost more")
    p.add_argument("--review-ratio-correct", type=float, default=REVIEW_RATIO_CORRECT,
                   help="price of reviewing a pre-annotation that needs no edit, as a share of "
                        "the from-scratch price (default 0.5: Ganchev et al. 2007 cut NER effort "
                        "by up to 58 %% with accept/reject decisions)")
    p.add_argument("--review-ratio-edit", type=float, default=REVIEW_RATIO_EDIT,
                   help="the same for a pre-annotation that needs edits (default 1.0: no saving "
                        "claimed)")
    p.add_argument("--llm-profile", choices=sorted(PROFILES), default=None,
                   help="a published LLM's quality and list prices (model/simulation/cost.py): "
                        "sets the --fake-llm persona for the data's language (unless --fake-llm "
                        "is given) and the LLM prices")
    p.add_argument("--llm-price-in", type=float, default=None, metavar="USD_PER_1M",
                   help="LLM input price per 1M tokens (default: the profile's, else "
                        "LLM_PRICE_IN_PER_1K x 1000)")
    p.add_argument("--llm-price-out", type=float, default=None, metavar="USD_PER_1M")
    p.add_argument("--budgets", type=float, nargs="+", default=list(DEFAULT_BUDGETS),
                   metavar="USD", help="budgets the summary reads each arm's F1 at")
    p.add_argument("--max-cost", type=float, default=None, metavar="USD",
                   help="stop an arm after its first round that spent more than this (with a "
                        "large --rounds: every arm runs until the budget or the pool is spent)")
    p.add_argument("--prelabel", nargs="+", default=[], choices=sorted(PICKERS),
                   metavar="PICKER", help=f"pre-label + review arms, one per picker: "
                                          f"{', '.join(sorted(PICKERS))}")
    p.add_argument("--prelabel-fraction", type=float, default=0.5,
                   help="share of the non-seed pool the LLM pre-labels up front")
    p.add_argument("--route-per-dollar", action="store_true",
                   help=f"add an {ROUTE_PER_USD} arm: routing thresholds for the most label "
                        f"value per dollar")
    p.add_argument("--route-wrong-penalty", type=float, default=1.0,
                   help="per-dollar routing: how much a wrong LLM span un-teaches (1: it undoes "
                        "a right one; 0: plain quality per dollar)")
    p.add_argument("--out", default="benchmarks/out/simulate")
    return p


def config_from_args(a: argparse.Namespace) -> Config:
    params = {}
    for kv in a.model_param:
        k, _, v = kv.partition("=")
        try:
            params[k] = json.loads(v)
        except json.JSONDecodeError:
            params[k] = v
    for s in a.strategies:
        get_strategy(s)  # fail fast, with the list of allowed names
    return Config(task=a.task, data=a.data, model=a.model, strategies=a.strategies,
                  oracles=a.oracle, routing=a.routing, seed_size=a.seed_size,
                  seed_sampler=a.seed_sampler, batch_size=a.batch_size, rounds=a.rounds,
                  seeds=a.seeds, max_pool=a.max_pool, max_test=a.max_test, full_f1=a.full_f1,
                  model_params=params, word_clusters=not a.no_word_clusters,
                  ner_backbone=a.ner_backbone, min_consistency=a.min_consistency,
                  min_agreement=a.min_agreement, route_target=a.route_target, llm_model=a.llm_model, fake_llm=a.fake_llm,
                  llm_samples=a.llm_samples, human_cost_per_sentence=a.human_cost_per_sentence,
                  random_extend=a.random_extend, candidates=a.candidates, aux_data=a.aux_data, aux_max=a.aux_max,
                  jobs=a.jobs, review_ratio_correct=a.review_ratio_correct,
                  review_ratio_edit=a.review_ratio_edit, llm_profile=a.llm_profile,
                  llm_price_in_per_1m=a.llm_price_in, llm_price_out_per_1m=a.llm_price_out,
                  budgets=a.budgets, max_cost_usd=a.max_cost, prelabel_pickers=a.prelabel,
                  prelabel_fraction=a.prelabel_fraction, route_per_dollar=a.route_per_dollar,
                  route_wrong_penalty=a.route_wrong_penalty, out=a.out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not 0 < args.prelabel_fraction <= 1:
        parser.error(f"--prelabel-fraction must be in (0, 1], got {args.prelabel_fraction}")
    if args.llm_profile:
        try:
            get_profile(args.llm_profile).score(Path(args.data).name)
        except ValueError as e:
            parser.error(str(e))
    try:
        import torch
        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass
    result = run(config_from_args(args))
    from model.simulation.report import format_summary
    print(format_summary(result))
    print(f"wrote {args.out}/simulation.csv, simulation.json, learning_curves.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
