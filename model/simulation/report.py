"""Summaries, files and learning-curve plots for ``model.simulation`` results.

The headline number of an active-learning run is "labels needed to reach 95 % of full-data F1",
read off the *mean* curve over seeds (a single lucky seed is not a result), with its ratio to
random sampling under the same oracle. When random never gets there within the simulated budget
the ratio is reported as an upper bound (``< x``), never as a number it did not earn.
"""
from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from model.simulation.cost import DEFAULT_BUDGETS, CostModel, at_budgets, best_at, format_point

__all__ = ["summarise", "write_outputs", "format_summary", "plot_curves", "merge_runs",
           "extend_run", "add_arms"]


def _curves(rows: list[dict]) -> dict[tuple[str, str], dict[str, np.ndarray]]:
    """(strategy, oracle) -> n_labeled (rounds,), f1 (seeds, rounds), tok (seeds, rounds), ..."""
    by: dict[tuple[str, str], dict[int, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        by[(r["strategy"], r["oracle"])][r["seed"]].append(r)
    out = {}
    for arm, seeds in by.items():
        n_rounds = min(len(v) for v in seeds.values())
        runs = [sorted(v, key=lambda r: r["round"])[:n_rounds] for v in seeds.values()]
        out[arm] = {
            "n_labeled": np.array([r["n_labeled"] for r in runs[0]]),
            "f1": np.array([[r["f1"] for r in run] for run in runs]),
            "tok": np.array([[r["entity_token_acc"] for r in run] for run in runs]),
            # tokens labelled per (seed, round); absent from results saved before it was recorded
            "tokens": np.array([[r["n_tokens_labeled"] for r in run] for run in runs], dtype=float)
            if all("n_tokens_labeled" in r for run in runs for r in run) else None,
            "last": [run[-1] for run in runs],
        }
    return out


def _to_reach(c: dict[str, np.ndarray], mean_f1: np.ndarray,
              target: float) -> tuple[int | None, int | None]:
    """(labels, mean tokens labelled over seeds) at the first round whose mean F1 reaches
    ``target``; tokens None for results saved before they were recorded."""
    hit = np.flatnonzero(mean_f1 >= target)
    if not hit.size:
        return None, None
    i = int(hit[0])
    tokens = None if c["tokens"] is None else int(round(c["tokens"][:, i].mean()))
    return int(c["n_labeled"][i]), tokens


def summarise(result: dict[str, Any]) -> dict[str, Any]:
    full = float(result["full_data_f1"])
    pool = int(result["pool_size"])
    target = 0.95 * full
    curves = _curves(result["rows"])
    arms: dict[str, dict[str, Any]] = {}
    for (strategy, oracle), c in curves.items():
        mean = c["f1"].mean(axis=0)
        labels_to_95, tokens_to_95 = _to_reach(c, mean, target)
        ten = c["n_labeled"] <= 0.10 * pool
        last = c["last"]
        arms[f"{strategy}/{oracle}"] = {
            "strategy": strategy, "oracle": oracle, "seeds": int(c["f1"].shape[0]),
            "n_labeled": c["n_labeled"].tolist(), "mean_f1": mean.round(4).tolist(),
            "sd_f1": c["f1"].std(axis=0).round(4).tolist(),
            "mean_entity_token_acc": c["tok"].mean(axis=0).round(4).tolist(),
            "labels_to_95": labels_to_95,
            "tokens_to_95": tokens_to_95,
            "max_labels": int(c["n_labeled"][-1]),
            "best_f1_within_10pct": float(mean[ten].max()) if ten.any() else None,
            "final_f1": float(mean[-1]),
            "final_llm_cost_usd": float(np.mean([r["llm_cost_usd"] for r in last])),
            "final_human_cost_usd": float(np.mean([r["human_cost_usd"] for r in last])),
            "final_n_human": float(np.mean([r["n_human"] for r in last])),
            "final_n_llm": float(np.mean([r["n_llm"] for r in last])),
            "final_n_llm_failed": float(np.mean([r["n_llm_failed"] for r in last])),
            "llm_label_token_acc": last[0].get("llm_label_token_acc"),
        }
    for a in arms.values():
        a["fraction_to_95"] = a["labels_to_95"] / pool if a["labels_to_95"] else None
        rnd = arms.get(f"random/{a['oracle']}")
        a["ratio_to_random"], a["ratio_is_upper_bound"] = None, False
        a["token_ratio_to_random"] = None
        if rnd is not None and a["labels_to_95"]:
            if rnd["labels_to_95"]:
                a["ratio_to_random"] = a["labels_to_95"] / rnd["labels_to_95"]
                if a["tokens_to_95"] and rnd["tokens_to_95"]:
                    a["token_ratio_to_random"] = a["tokens_to_95"] / rnd["tokens_to_95"]
            else:  # random never reached it: it needs more than its max, so ratio < this
                a["ratio_to_random"] = a["labels_to_95"] / rnd["max_labels"]
                a["ratio_is_upper_bound"] = True
        n_llm = a["final_n_llm"]
        a["llm_cost_per_sentence"] = a["final_llm_cost_usd"] / n_llm if n_llm else None
    gold = [a for a in arms.values() if a["oracle"] == "gold" and a["strategy"] != "random"]
    reached = [a for a in gold if a["labels_to_95"]]
    best = min(reached, key=lambda a: a["labels_to_95"]) if reached else None
    budgets = [float(b) for b in result["config"].get("budgets") or DEFAULT_BUDGETS]
    points = at_budgets(result["rows"], budgets)
    for key, p in points.items():
        arms[key]["at_budget"] = {str(b): v for b, v in p.items()}
    best_per_budget = {}
    for b in budgets:
        top = best_at(points, b) if points else None
        best_per_budget[str(b)] = None if top is None else {"arm": top[0], **top[1]}
    return {"full_data_f1": full, "target_f1": target, "pool_size": pool, "arms": arms,
            "best_gold_strategy": best["strategy"] if best else None, "budgets": budgets,
            "best_at_budget": best_per_budget}


# how a continuation may differ from the run it continues without measuring something else
_RUN_ONLY = ("seeds", "full_f1", "jobs", "out")


def _check_same_experiment(earlier: dict, later: dict, may_differ: tuple[str, ...] = (),
                           same_seeds: bool = False) -> None:
    """Refuse to combine runs whose configurations differ beyond ``_RUN_ONLY`` + ``may_differ``
    (another model, dataset or batch size would make one curve of two experiments), or, with
    ``same_seeds``, that ran other seeds (a continuation of the saved run's arms)."""
    if same_seeds and sorted(later["config"]["seeds"]) != sorted(earlier["config"]["seeds"]):
        raise ValueError("a continuation must run the saved run's seeds")
    from dataclasses import asdict

    from model.simulation.loop import Config
    skip = set(_RUN_ONLY) | set(may_differ)
    a, b = earlier["config"], later["config"]
    # a key one config lacks counts as its default: results saved before a field existed
    # (aux_max, budgets, say) still combine with runs that have it at its default
    default = json.loads(json.dumps(asdict(Config())))
    diff = sorted(k for k in (a.keys() | b.keys()) - skip
                  if a.get(k, default.get(k)) != b.get(k, default.get(k)))
    if diff:
        raise ValueError(f"cannot combine runs of different configurations (differ in {diff})")


def merge_runs(earlier: dict[str, Any], later: dict[str, Any]) -> dict[str, Any]:
    """One result from two runs of the same configuration on different seeds (``later`` ran with
    ``full_f1`` = ``earlier``'s full-data F1): rows concatenated, summary recomputed, the full-data
    figures and their fit time those ``earlier`` measured."""
    _check_same_experiment(earlier, later)
    clash = set(earlier["config"]["seeds"]) & set(later["config"]["seeds"])
    if clash:
        raise ValueError(f"seeds {sorted(clash)} are in both runs")
    merged = {**earlier, "rows": earlier["rows"] + later["rows"],
              "config": {**earlier["config"],
                         "seeds": earlier["config"]["seeds"] + later["config"]["seeds"]}}
    merged["summary"] = summarise(merged)
    return merged


def extend_run(earlier: dict[str, Any], longer: dict[str, Any]) -> dict[str, Any]:
    """``earlier`` with the curves of ``longer`` (the same seeds and strategies run for more
    rounds, without a random arm) in place of its own, and its random arm kept. The rounds both
    ran must agree (the same seed sets and deterministic models give the same F1), which is
    checked: an extension that does not reproduce the run it extends is refused."""
    _check_same_experiment(earlier, longer, may_differ=("rounds", "random_arm"), same_seeds=True)

    def key(r: dict) -> tuple:
        return r["strategy"], r["oracle"], r["seed"], r["round"]
    old = {key(r): r["f1"] for r in earlier["rows"]}
    new_arms = {(r["strategy"], r["oracle"], r["seed"]) for r in longer["rows"]}
    for r in longer["rows"]:
        if key(r) in old and abs(old[key(r)] - r["f1"]) > 1e-9:
            raise ValueError(f"the extension does not reproduce the saved run at {key(r)}: "
                             f"F1 {r['f1']} vs {old[key(r)]}")
    rows = [r for r in earlier["rows"] if (r["strategy"], r["oracle"], r["seed"]) not in new_arms]
    merged = {**earlier, "rows": rows + longer["rows"],
              "config": {**earlier["config"], "rounds": longer["config"]["rounds"]}}
    merged["summary"] = summarise(merged)
    return merged


def add_arms(earlier: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``earlier`` with the strategy arms of ``extra`` added: new strategies run on the same
    seeds and configuration without a random arm, so they are compared with the random arm
    ``earlier`` measured (which for a slow model is most of a run's cost). An arm ``earlier``
    already has is refused rather than overwritten."""
    _check_same_experiment(earlier, extra, may_differ=("strategies", "random_arm"),
                           same_seeds=True)
    have = {(r["strategy"], r["oracle"]) for r in earlier["rows"]}
    clash = sorted(have & {(r["strategy"], r["oracle"]) for r in extra["rows"]})
    if clash:
        raise ValueError(f"the saved run already has the arms {clash}")
    strategies = list(dict.fromkeys(earlier["config"]["strategies"] + extra["config"]["strategies"]))
    merged = {**earlier, "rows": earlier["rows"] + extra["rows"],
              "config": {**earlier["config"], "strategies": strategies}}
    merged["summary"] = summarise(merged)
    return merged


def format_summary(result: dict[str, Any]) -> str:
    s = result["summary"]
    cfg = result["config"]
    lines = [f"pool {s['pool_size']} sentences, test {result['test_size']}; model {cfg['model']}; "
             f"full-data F1 {s['full_data_f1']:.4f}"
             f"{' (given)' if result['full_data_f1_given'] else ''}; 95 % target "
             f"{s['target_f1']:.4f}; seeds {cfg['seeds']}",
             *([f"auxiliary labelled corpora: {result['aux_size']} sentences in every training set "
                f"(not counted as labels)" + (f"; full-data F1 without them {own:.4f}"
                                              if (own := result.get("pool_only_full_data_f1"))
                                              else "")]
               if result.get("aux_size") else []),
             "| strategy | oracle | labels to 95 % | % of pool | ratio to random | tokens to 95 % "
             "(ratio) | best F1 <= 10 % | final F1 (labels) | human $ | LLM $ |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for a in s["arms"].values():
        reach = a["labels_to_95"] if a["labels_to_95"] else f"> {a['max_labels']}"
        frac = f"{100 * a['fraction_to_95']:.1f}" if a["fraction_to_95"] else "-"
        ratio = "-" if a["ratio_to_random"] is None else \
            f"{'< ' if a['ratio_is_upper_bound'] else ''}{a['ratio_to_random']:.2f}"
        ten = "-" if a["best_f1_within_10pct"] is None else f"{a['best_f1_within_10pct']:.4f}"
        toks = "-" if not a.get("tokens_to_95") else f"{a['tokens_to_95']:,}" + (
            f" ({a['token_ratio_to_random']:.2f})" if a.get("token_ratio_to_random") else "")
        lines.append(f"| {a['strategy']} | {a['oracle']} | {reach} | {frac} | {ratio} | {toks} | {ten} | "
                     f"{a['final_f1']:.4f} ({a['max_labels']}) | {a['final_human_cost_usd']:.2f} | "
                     f"{a['final_llm_cost_usd']:.4f} |")
    human = cfg["human_cost_per_sentence"]
    for a in s["arms"].values():
        per = a["llm_cost_per_sentence"]
        if per:
            acc = a["llm_label_token_acc"]
            total = a["final_llm_cost_usd"] + a["final_human_cost_usd"]
            all_human = a["max_labels"] * human
            lines.append(f"cost {a['strategy']}/{a['oracle']}: LLM ${per:.4f} per LLM-labelled "
                         f"sentence vs human ${human:.4f}; total ${total:.2f} vs ${all_human:.2f} "
                         f"all-human ({all_human / total:.2f}x); "
                         f"{a['final_n_llm']:.0f} LLM-labelled, {a['final_n_human']:.0f} by humans, "
                         f"{a['final_n_llm_failed']:.0f} LLM failures; LLM label token accuracy "
                         f"{'-' if acc is None else f'{acc:.3f}'}")
    lines += format_budgets(result)
    return "\n".join(lines)


def format_budgets(result: dict[str, Any]) -> list[str]:
    """The cost model, then F1 at each budget per arm and the best arm per budget (empty for
    results saved before costs were recorded)."""
    s = result["summary"]
    arms = {k: a for k, a in s["arms"].items() if "at_budget" in a}
    if not arms:
        return []
    budgets = s["budgets"]
    cost = result.get("cost_model")
    lines = [CostModel(**cost).describe() if cost else "cost model: not recorded",
             "| F1 at budget | " + " | ".join(f"${b:g}" for b in budgets) + " |",
             "|---|" + "---|" * len(budgets)]
    for key, a in arms.items():
        lines.append(f"| {key} | " + " | ".join(format_point(a["at_budget"][str(b)])
                                                 for b in budgets) + " |")
    best = []
    for b in budgets:
        v = s["best_at_budget"][str(b)]
        best.append(f"${b:g}: " + ("-" if not v else f"{v['arm']} {format_point(v)}"))
    lines.append("best policy at each budget: " + "; ".join(best))
    return lines


def plot_curves(result: dict[str, Any], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    curves = _curves(result["rows"])
    oracles = sorted({o for _, o in curves})
    fig, axes = plt.subplots(1, len(oracles), figsize=(6.5 * len(oracles), 4.5), squeeze=False)
    full = result["full_data_f1"]
    for ax, oracle in zip(axes[0], oracles):
        for (strategy, o), c in sorted(curves.items()):
            if o != oracle:
                continue
            mean, sd = c["f1"].mean(0), c["f1"].std(0)
            style = "--" if strategy == "random" else "-"
            ax.plot(c["n_labeled"], mean, style, marker="o", ms=3, label=strategy)
            ax.fill_between(c["n_labeled"], mean - sd, mean + sd, alpha=0.2)
        ax.axhline(full, color="k", lw=0.8, label=f"full data {full:.3f}")
        if result.get("pool_only_full_data_f1"):  # with auxiliary corpora: the pool-only ceiling
            own = result["pool_only_full_data_f1"]
            ax.axhline(own, color="grey", lw=0.8, ls="--", label=f"full data, no aux {own:.3f}")
        ax.axhline(0.95 * full, color="k", lw=0.8, ls=":", label="95 % of full")
        ax.set_title(f"oracle: {oracle} (mean ± sd, seeds {result['config']['seeds']})")
        ax.set_xlabel("labelled sentences")
        ax.set_ylabel("test F1")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_outputs(result: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    rows = result["rows"]
    keys = list(dict.fromkeys(k for r in rows for k in r))
    with open(out / "simulation.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
    (out / "simulation.json").write_text(json.dumps(result, indent=1, default=float),
                                         encoding="utf-8")
    plot_curves(result, out / "learning_curves.png")
