"""A budget answer: which labelling policy gives the best NER F1 for my money?

For a language's data folder (its train split is the pool, its test split the evaluation), an LLM
(a published profile, ``--llm-f1`` with prices, or the winner of a ``python -m model.selection``
run) and a budget, this runs the simulation's policies - gold active learning, the paper's
LLM-only loop, routing for F1 per dollar, pre-label + review with three pickers - each until it
has spent the budget or its pool, and prints the F1 each reached within the budget, the cost
model, and the best policy. ``--from-run`` reads a saved ``simulation.json`` instead of running.

Every figure printed is measured by the simulation (test F1 of the model trained on what the
policy bought); an arm that ran out of pool before the budget says so and is never extrapolated.
The LLM is the fake server reproducing the stated quality on this data set, so the answer is as
good as that figure is for your endpoint: measure it with ``python -m model.selection``.

Examples::

  python -m model.simulation.plan --data ../shared/data/masakhaner2/hau \\
      --llm-profile afrobench-gpt-4o --budget 10
  python -m model.simulation.plan --data ../shared/data/masakhaner2/hau --llm-f1 0.62 \\
      --llm-price-in 0.5 --llm-price-out 1.5 --budget 20
  python -m model.simulation.plan --from-run benchmarks/out/simulate_al/cost_hau_afrobench-gpt-4o/simulation.json --budget 10
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from model.simulation.cost import (PROFILES, CostModel, at_budgets, best_at, format_point,
                                 get_profile)

__all__ = ["main", "plan_lines", "PLAN_PICKERS"]

PLAN_PICKERS = ["uncertainty", "self_consistency", "disagreement"]
GPT_4O_PRICES = (2.50, 10.00)  # OpenAI list price per 1M tokens: the default for --llm-f1


def _selection_figures(path: str) -> tuple[float, float, float, str]:
    """(single-sample entity F1, price in, price out per 1M, name) of a selection run's winner."""
    doc = json.loads(Path(path).read_text(encoding="utf-8"))
    winner = (doc.get("decision") or {}).get("winner")
    if not winner:
        raise ValueError(f"{path}: the selection run chose no winner")
    cand = doc["candidates"][winner]
    f1 = cand["metrics"].get("f1_mean")
    if f1 is None:
        raise ValueError(f"{path}: the winner {winner!r} has no entity F1 (f1_mean)")
    c = cand["candidate"]
    return (float(f1), float(c.get("price_in_per_1k", 0.0)) * 1000,
            float(c.get("price_out_per_1k", 0.0)) * 1000, f"selection winner {winner}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m model.simulation.plan", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--budget", type=float, required=True, metavar="USD",
                   help="what you can spend on labels (human + LLM), in US dollars")
    p.add_argument("--data", default=None,
                   help="the language's folder with train.txt / test.txt (CoNLL); its name "
                        "(hau, yor, swa ...) picks the profile's figure")
    llm = p.add_mutually_exclusive_group()
    llm.add_argument("--llm-profile", default=None, metavar="NAME",
                     help=f"a published LLM: {', '.join(sorted(PROFILES))}")
    llm.add_argument("--llm-f1", type=float, default=None,
                     help="your endpoint's single-sample strict entity F1 on this language")
    llm.add_argument("--selection-report", default=None, metavar="SELECTION_JSON",
                     help="a python -m model.selection run's selection.json: its winner's "
                          "entity F1 (f1_mean) and prices")
    p.add_argument("--llm-price-in", type=float, default=None, metavar="USD_PER_1M",
                   help="with --llm-f1: input price per 1M tokens (default GPT-4o's $2.50)")
    p.add_argument("--llm-price-out", type=float, default=None, metavar="USD_PER_1M",
                   help="with --llm-f1: output price per 1M tokens (default GPT-4o's $10)")
    p.add_argument("--from-run", default=None, metavar="SIMULATION_JSON",
                   help="read a saved simulation instead of running one")
    p.add_argument("--strategy", default="least_confidence",
                   help="the query strategy of the active-learning policies")
    p.add_argument("--max-pool", type=int, default=1500, help="pool cap (2 cores: keep it small)")
    p.add_argument("--max-test", type=int, default=500)
    p.add_argument("--seed-size", type=int, default=50)
    p.add_argument("--batch-size", type=int, default=50)
    p.add_argument("--max-rounds", type=int, default=60,
                   help="upper bound; each arm stops once it has spent the budget or its pool")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--llm-samples", type=int, default=3)
    p.add_argument("--out", default="benchmarks/out/simulate_plan")
    return p


def _run(a: argparse.Namespace, f1: float | None) -> dict[str, Any]:
    """Run the policies until each has spent the budget (or its pool)."""
    from model.simulation.loop import Config, run
    cfg = Config(data=a.data, model="crf", strategies=[a.strategy], oracles=["gold", "llm"],
                 route_per_dollar=True, prelabel_pickers=PLAN_PICKERS, seed_size=a.seed_size,
                 batch_size=a.batch_size, rounds=a.max_rounds, seeds=a.seeds,
                 max_pool=a.max_pool, max_test=a.max_test, full_f1=1.0,
                 llm_profile=a.llm_profile, llm_samples=a.llm_samples,
                 fake_llm=None if f1 is None else f"systematic-{f1:g}",
                 llm_price_in_per_1m=a.llm_price_in, llm_price_out_per_1m=a.llm_price_out,
                 budgets=[a.budget], max_cost_usd=a.budget, out=a.out)
    return run(cfg)


def plan_lines(result: dict[str, Any], budget: float, llm_label: str) -> list[str]:
    """The answer: the cost model, F1 within the budget per policy, the best policy."""
    cfg = result["config"]
    points = {k: v[budget] for k, v in at_budgets(result["rows"], [budget]).items()}
    lines = [f"plan for {Path(cfg['data']).name}, budget ${budget:g}; LLM: {llm_label}"
             f"{' (persona ' + result['llm_persona'] + ')' if result.get('llm_persona') else ''}; "
             f"simulated pool {result['pool_size']}, test {result['test_size']}, seeds "
             f"{cfg['seeds']}, model {cfg['model']}",
             CostModel(**result["cost_model"]).describe() if result.get("cost_model")
             else "cost model: not recorded in this run",
             "| policy | F1 within budget | spent | status |", "|---|---|---|---|"]
    for arm, p in sorted(points.items(), key=lambda kv: -(kv[1]["f1"] or -1)):
        lines.append(f"| {arm} | {format_point(p)} | ${p['cost']:.2f} | {p['status']} |")
    top = best_at({k: {budget: v} for k, v in points.items()}, budget)
    if top is None:
        lines.append(f"best policy at ${budget:g}: none - every policy's first round costs more")
        return lines
    gold = [v for k, v in points.items() if k.endswith("/gold") and not k.startswith("random/")
            and v["f1"] is not None]
    vs = f"; vs gold active learning {gold[0]['f1']:.3f} ({top[1]['f1'] - gold[0]['f1']:+.3f})" \
        if gold else ""
    lines.append(f"best policy at ${budget:g}: {top[0]} (F1 {format_point(top[1])}, spent "
                 f"${top[1]['cost']:.2f}){vs}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    a = parser.parse_args(argv)
    if not a.budget > 0:
        parser.error(f"--budget must be a positive number of dollars, got {a.budget}")
    if a.llm_f1 is not None and not 0 < a.llm_f1 <= 1:
        parser.error(f"--llm-f1 must be in (0, 1], got {a.llm_f1}")
    if a.llm_profile is not None and a.llm_profile not in PROFILES:
        parser.error(f"unknown LLM profile {a.llm_profile!r}; expected one of {sorted(PROFILES)}")
    f1 = a.llm_f1
    label = a.llm_profile or (f"entity F1 {f1:g}" if f1 is not None else None)
    if a.selection_report:
        try:
            f1, a.llm_price_in, a.llm_price_out, label = _selection_figures(a.selection_report)
        except (OSError, ValueError, KeyError) as e:
            parser.error(f"--selection-report: {e}")
    if f1 is not None:
        a.llm_price_in = GPT_4O_PRICES[0] if a.llm_price_in is None else a.llm_price_in
        a.llm_price_out = GPT_4O_PRICES[1] if a.llm_price_out is None else a.llm_price_out
        label = f"{label} at ${a.llm_price_in:g} / ${a.llm_price_out:g} per 1M tokens"
    if a.from_run:
        try:
            result = json.loads(Path(a.from_run).read_text(encoding="utf-8"))
            if not isinstance(result, dict) or not {"rows", "config"} <= result.keys():
                raise ValueError("no rows / config")
        except (OSError, ValueError) as e:
            parser.error(f"--from-run {a.from_run}: not a readable simulation.json ({e})")
        cfg = result["config"]
        lang = Path(cfg["data"]).name
        if a.data and Path(a.data).name != lang:
            parser.error(f"--from-run simulated {lang!r}, not {Path(a.data).name!r}")
        if a.llm_profile and cfg.get("llm_profile") != a.llm_profile:
            parser.error(f"--from-run used LLM profile {cfg.get('llm_profile')!r}, not "
                         f"{a.llm_profile!r}")
        label = label or cfg.get("llm_profile") or cfg.get("fake_llm") or "as in the run"
    else:
        if not a.data or not (Path(a.data) / "train.txt").is_file():
            parser.error(f"--data must be a folder with train.txt and test.txt (got {a.data!r})")
        if label is None:
            parser.error("give the LLM: --llm-profile, --llm-f1 or --selection-report")
        if a.llm_profile:
            try:
                get_profile(a.llm_profile).score(Path(a.data).name)
            except ValueError as e:
                parser.error(str(e))
        import torch
        torch.set_num_threads(1)
        result = _run(a, f1)
    print("\n".join(plan_lines(result, a.budget, label)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
