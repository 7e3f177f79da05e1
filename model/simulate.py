"""Offline active-learning simulation: learning curves per strategy, oracle and seed.

Run ``python -m model.simulate --help``. Each arm (strategy x oracle) starts from the same seed set
per seed, retrains the model from scratch on all labels so far every round, re-scores the whole
unlabelled pool, buys the next batch from the oracle and records test F1. Random sampling is
always an arm (weakness 3 of the reference code). Queried items leave the pool, which is asserted
every round (weakness 2). Metrics: seqeval entity F1 (strict spans) and the paper's entity-token
accuracy (tokens whose gold tag is not O), so both sides of weakness 4 are visible.

Oracles: ``gold`` (the dataset's labels, standing for a human) or ``llm`` (an OpenAI-compatible
endpoint through ``model.llm.annotator``, e.g. the fake server with a ``noisy-0.14`` persona).
``--routing`` adds an ``llm+route`` arm: LLM labels are accepted only where the LLM is
self-consistent and the current local model agrees with it; the rest go to a human (gold), who is
paid for.
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
from model.active.sampling import entity_rich_sample, random_sample
from model.simulate_models import (MODEL_KINDS, Data, evaluate, fit_model, load_aux, load_data,
                                   served_part)
from model.simulate_oracles import GoldOracle, buy_labels, make_llm_oracle

# Human price: a LOWER bound, so the LLM saving we report is a floor. Amazon SageMaker Ground
# Truth's Mechanical Turk rate for named-entity labelling is $0.012 per text unit per worker, with
# 3 workers per object by default for consensus (tabulated at
# https://www.wring.co/blog/aws-sagemaker-ground-truth-pricing-guide, 2026): 3 x 0.012 = $0.036.
# Annotators fluent in Hausa/Yoruba cost more than an anonymous crowd.
HUMAN_COST_PER_SENTENCE = 0.036


def model_outputs(data: Data, model: Any, X: Sequence) -> ModelOutputs:
    """Lazy outputs of the served model's tagger or classifier on pool items ``X``."""
    if data.task == "ner":
        return ModelOutputs.from_tagger(served_part(model), X)
    return ModelOutputs.from_classifier(served_part(model), X)


@dataclass
class Config:
    task: str = "ner"
    data: str = "../shared/data/masakhaner2/hau"
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
    random_extend: list[int] = field(default_factory=list)
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
        if self.routing:
            arms += [(s, "llm+route") for s in strategies if s != "random"] or \
                    [("random", "llm+route")]
        return arms


def _fit(cfg: Config, data: Data, idx: Sequence[int], labels: dict[int, list], seed: int) -> Any:
    """The served ``LocalModel``, fresh, on the auxiliary corpora (free, not counted) + every
    label bought so far; word classes from the whole pool's text."""
    return fit_model(cfg.model, data, idx, labels, seed=seed, params=cfg.model_params,
                     word_clusters=cfg.word_clusters, ner_backbone=cfg.ner_backbone)


def run_arm(cfg: Config, data: Data, strategy_name: str, oracle_name: str, seed: int,
            seed_idx: np.ndarray, oracles: dict[str, Any], progress: Any = None) -> list[dict]:
    """One learning curve; returns one row per round."""
    rng = np.random.default_rng(1000 + seed)
    strategy = get_strategy(strategy_name, seed=seed) if strategy_name == "random" \
        else get_strategy(strategy_name)
    gold = oracles["gold"]
    labels: dict[int, list] = {int(i): gold.label(int(i)) for i in seed_idx}  # human seed set
    labelled = [int(i) for i in seed_idx]
    counts = {"human": len(labelled), "llm": 0, "auto_accepted": 0, "llm_failed": 0,
              "llm_correct_tokens": 0, "llm_tokens_total": 0}
    if oracle_name != "gold":
        oracles["llm"].start_arm(f"{strategy_name}-{oracle_name}-seed{seed}")
    fixed = cfg.min_consistency is not None and cfg.min_agreement is not None
    policy = RoutingPolicy(cfg.min_consistency, cfg.min_agreement) if fixed \
        else RoutingPolicy.never()
    evidence: list[tuple[float, float, float]] = []  # reviewed: (consistency, agreement, quality)
    rows = []
    n_tokens = _token_counts(data)
    targets = _targets(cfg, strategy_name, len(labelled))
    for r in range(len(targets) + 1):
        t0 = time.perf_counter()
        model = _fit(cfg, data, labelled, labels, seed)
        fit_s = time.perf_counter() - t0
        metrics = evaluate(data, served_part(model))
        llm = oracles.get("llm")
        usage = llm.usage() if llm is not None and oracle_name != "gold" else {}
        rows.append({"strategy": strategy_name, "oracle": oracle_name, "seed": seed, "round": r,
                     "n_labeled": len(labelled), "n_tokens_labeled": int(n_tokens[labelled].sum()),
                     "n_human": counts["human"], "n_llm": counts["llm"],
                     "n_auto_accepted": counts["auto_accepted"],
                     "n_llm_failed": counts["llm_failed"],
                     "llm_label_token_acc": (counts["llm_correct_tokens"]
                                             / counts["llm_tokens_total"])
                     if counts["llm_tokens_total"] else None,
                     **metrics, "llm_tokens_in": usage.get("tokens_in", 0),
                     "llm_tokens_out": usage.get("tokens_out", 0),
                     "llm_cost_usd": usage.get("cost_usd", 0.0),
                     "human_cost_usd": counts["human"] * cfg.human_cost_per_sentence,
                     "fit_s": round(fit_s, 2)})
        if progress is not None:
            progress.update(1)
            progress.set_postfix(arm=f"{strategy_name}/{oracle_name}", f1=f"{metrics['f1']:.3f}")
        if r == len(targets):
            break
        pool = np.setdiff1d(np.arange(len(data.X)), labelled)
        if pool.size == 0:
            break
        t1 = time.perf_counter()
        outputs = model_outputs(data, model, data.X)  # lazy: random never computes it
        picked = strategy.query(outputs, pool, min(targets[r] - len(labelled), pool.size),
                                indices_labeled=np.array(labelled), rng=rng)
        rows[-1]["query_s"] = round(time.perf_counter() - t1, 2)
        assert not set(map(int, picked)) & set(labelled), "an item was queried twice"
        assert len(set(map(int, picked))) == len(picked), "duplicate items in one batch"
        buy_labels(data, oracle_name, [int(i) for i in picked], served_part(model), oracles, policy, labels,
                   counts, evidence)
        if oracle_name == "llm+route" and not fixed:  # thresholds from live agreement figures
            c, a, q = (np.array(v) for v in zip(*evidence)) if evidence else ([], [], [])
            policy = fit_thresholds(c, a, q, cfg.route_target, min_support=20)
            rows[-1]["policy"] = json.dumps(policy.to_dict())
        labelled.extend(int(i) for i in picked)
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

    from model.simulate_plot import summarise, write_outputs
    needs_llm = any(o != "gold" for _, o in cfg.arms())
    if cfg.jobs > 1 and needs_llm:
        raise ValueError("--jobs > 1 needs gold oracles only (an LLM oracle holds a server "
                         "connection and a cache that processes cannot share)")
    data = load_data(cfg.task, cfg.data, cfg.max_pool, cfg.max_test)
    if cfg.aux_data:
        load_aux(data, cfg.aux_data, cfg.aux_max)
    oracles: dict[str, Any] = {"gold": GoldOracle(data.Y)}
    if needs_llm:
        oracles["llm"] = make_llm_oracle(data, cfg.data, cfg.llm_model, cfg.llm_samples,
                                         cfg.fake_llm, str(Path(cfg.out) / "llm_store"))
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
              "pool_only_full_data_f1": pool_only, "rows": rows}
    result["summary"] = summarise(result)
    write_outputs(result, Path(cfg.out))
    return result


def _seed_set(cfg: Config, data: Data, seed: int) -> np.ndarray:
    srng = np.random.default_rng(seed)
    if cfg.seed_sampler == "entity-rich" and data.task == "ner":
        return entity_rich_sample(data.Y, cfg.seed_size, srng)
    return random_sample(len(data.X), cfg.seed_size, srng)


def _run_all(cfg: Config, data: Data, arms: list[tuple[str, str]], oracles: dict[str, Any],
             tqdm: Any) -> list[dict]:
    """Every (seed, arm) run, in order; with ``cfg.jobs > 1`` in forked worker processes."""
    runs = [(seed, s, o) for seed in cfg.seeds for s, o in arms]
    total = sum(len(_targets(cfg, s, cfg.seed_size)) + 1 for _, s, _ in runs)
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
    p = argparse.ArgumentParser(prog="python -m model.simulate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", choices=["ner", "textcat"], default="ner")
    p.add_argument("--data", default="../shared/data/masakhaner2/hau",
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
                   help="simulate the LLM offline: the tests.fakellm server with this persona "
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
                  random_extend=a.random_extend, aux_data=a.aux_data, aux_max=a.aux_max,
                  jobs=a.jobs,
                  out=a.out)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        import torch
        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass
    result = run(config_from_args(args))
    from model.simulate_plot import format_summary
    print(format_summary(result))
    print(f"wrote {args.out}/simulation.csv, simulation.json, learning_curves.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
