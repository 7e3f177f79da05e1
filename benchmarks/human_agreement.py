"""Human inter-annotator agreement (MasakhaNER multi-annotator files) beside an LLM selection run.

1. The human reference: pairwise Cohen's kappa, Fleiss' kappa, Krippendorff's alpha, observed
   agreement and pairwise entity F1 per language, on every file in ../shared/data/masakhaner-iaa.
2. A full selection run (``model.selection``) against the fake OpenAI-compatible server in
   ``devtools/fakellm`` with four candidates whose behaviour is known: ``good`` (persona
   ``perfect``), ``noisy`` (``noisy-0.3``: 30 % of tags replaced), ``inconsistent`` (runs drop or
   relabel an entity in turn), ``broken`` (``garbage``: never JSON). The rule must pick ``good``
   and explain why each other lost; the LLM figures are printed next to the human ones.

Writes benchmarks/out/selection/ (selection.json, report.md/.html, plots, llm.env,
human_reference.json) and benchmarks/results/selection.md.

    python -m benchmarks.human_agreement --lang hau -n 50 --runs 5
"""
from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from model.human_agreement import DEFAULT_DIR, format_table, human_reference
from model.selection import GoldSample, parse_candidates, run_selection
from model.selection.report import format_usd
from model.languages import language_name
from model.shared_data import MASAKHANER2

ROOT = Path(__file__).resolve().parents[1]
DATA = MASAKHANER2
OUT = Path(__file__).resolve().parent / "out" / "selection"
RESULTS = Path(__file__).resolve().parent / "results" / "selection.md"
PERSONAS = [("good", "perfect", 0.01, 0.03), ("noisy", "noisy-0.3", 0.001, 0.002),
            ("inconsistent", "inconsistent", 0.005, 0.01), ("broken", "garbage", 0.0, 0.0)]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.human_agreement", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lang", default="hau", help="MasakhaNER 2.0 language of the gold sample")
    p.add_argument("--split", default="dev", choices=("train", "dev", "test"))
    p.add_argument("-n", "--sample-size", type=int, default=50, help="gold sentences (paper: 50)")
    p.add_argument("-r", "--runs", type=int, default=5, help="annotations per sentence (paper: 10)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--n-boot", type=int, default=1000)
    p.add_argument("--iaa", default=str(DEFAULT_DIR), help="masakhaner-iaa directory")
    p.add_argument("--out", default=str(OUT))
    p.add_argument("--results", default=str(RESULTS))
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    t0 = time.perf_counter()
    cached = (out / "human_reference.json").is_file()
    human = human_reference(args.iaa, cache=out / "human_reference.json")
    human_s = time.perf_counter() - t0
    table = format_table(human)
    print("Human inter-annotator agreement (MasakhaNER multi-annotator files):")
    print(table)

    from devtools.fakellm.server import load_gold, start_server

    # a benchmark measures real calls: no cached answers, no saved runs from an earlier invocation
    for stale in ("llm-store", "candidates"):
        shutil.rmtree(out / stale, ignore_errors=True)

    gold_file = DATA / args.lang / f"{args.split}.txt"
    gold = GoldSample.from_conll(gold_file, args.sample_size, "entity-rich", args.seed)
    with start_server(load_gold(str(gold_file))) as srv:
        cands = parse_candidates([{"name": n, "base_url": srv.base_url, "model": m,
                                   "api_key_env": "FAKE_LLM_KEY", "price_in_per_1k": pi,
                                   "price_out_per_1k": po, "temperature": 0.1}
                                  for n, m, pi, po in PERSONAS])
        t0 = time.perf_counter()
        res = run_selection(cands, gold, runs=args.runs, store_dir=out / "llm-store", out_dir=out,
                            language=language_name(args.lang, args.lang), n_boot=args.n_boot,
                            seed=args.seed, human_reference=human, environ={"FAKE_LLM_KEY": "fake"})
        sel_s = time.perf_counter() - t0
        stats = srv.stats

    alphas = [h["alpha"] for h in human]
    lines = ["# Annotator selection: human agreement vs LLM candidates", "",
             f"Command: `python -m benchmarks.human_agreement --lang {args.lang} -n {args.sample_size} "
             f"--runs {args.runs}` (2 shared CPU cores; human table "
             f"{'from its cache file' if cached else f'{human_s:.0f} s'}, selection "
             f"{sel_s:.0f} s, {stats['requests']} requests to the fake server, "
             f"{stats['prompt_tokens']:,} prompt + {stats['completion_tokens']:,} completion tokens).", "",
             "## Human reference (the baseline)", "",
             f"Krippendorff's alpha between real annotators: {min(alphas):.3f}-{max(alphas):.3f} over "
             f"{len(human)} languages (token level, nominal; the paper quotes human kappa 0.94-1.0).", "",
             table, "",
             "Where a file's pairwise figures are exactly 1.000 (here: "
             + (", ".join(h["language"] for h in human if h["kappa_mean"] == 1.0) or "none")
             + "), its annotator columns are identical token for token, which suggests adjudicated "
             "copies rather than independent annotations; read those rows as an upper bound.", "",
             f"## Selection run on the fake server ({args.lang} {args.split}, {len(gold.tags)} "
             f"entity-rich sentences, {args.runs} runs each)", "",
             f"Rule: {res.decision.rule.describe()}.", "",
             f"**Winner: `{res.winner}`**", "",
             "| # | candidate (persona) | entity F1 mean [95 % CI] | F1 majority | token acc. | "
             "kappa vs gold | alpha across runs [95 % CI] | Fleiss across runs | failures | cost / 1k sent. | why not chosen |",
             "|---:|---|---|---:|---:|---:|---|---:|---:|---:|---|"]
    personas = dict((n, m) for n, m, _, _ in PERSONAS)
    for r in res.decision.ranking:
        m = res.metrics[r.name]

        def f(x, pct=False):
            return "n/a" if x != x else (f"{100 * x:.1f}" if pct else f"{x:.3f}")

        ci = m["f1_ci"]
        aci = m["alpha_runs_ci"]
        lines.append(
            f"| {r.rank} | {r.name} (`{personas[r.name]}`) | {f(m['f1_mean'], True)} [{f(ci[0], True)}, {f(ci[1], True)}] | "
            f"{f(m['f1_majority'], True)} | {f(m['token_accuracy_mean'])} | {f(m['kappa_gold_mean'])} | "
            f"{f(m['alpha_runs'])} [{f(aci[0])}, {f(aci[1])}] | {f(m['fleiss_kappa_runs'])} | "
            f"{m['format_failure_rate']:.0%} | {format_usd(m['cost_per_1k_usd'])} | "
            f"{'chosen' if r.name == res.winner else '; '.join(r.reasons)} |")
    lines += ["", "Against the human baseline (lowest human alpha "
              f"{min(alphas):.3f}, mean pairwise human entity F1 "
              f"{100 * sum(h['f1_mean'] for h in human) / len(human):.1f}):", ""]
    for r in res.decision.ranking:
        m = res.metrics[r.name]
        a = m["alpha_runs"]
        if a != a:
            lines.append(f"- `{r.name}`: no usable run, so no agreement to compare "
                         f"({m['format_failure_rate']:.0%} format failures).")
            continue
        where = "at or above" if a >= min(alphas) else f"{min(alphas) - a:.3f} below"
        gap = m["f1_majority"] - m["f1_mean"]
        lines.append(f"- `{r.name}`: self-agreement alpha {a:.3f}, {where} the lowest human "
                     f"figure; the majority vote of its runs {'gains' if gap >= 0 else 'loses'} "
                     f"{abs(100 * gap):.1f} F1 points over a single run.")
    lines += ["",
              "Full report: `benchmarks/out/selection/report.md` (+ `.html`, plots, `selection.json`, `llm.env`)."]
    Path(args.results).parent.mkdir(parents=True, exist_ok=True)
    Path(args.results).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print()
    print("\n".join(lines[lines.index(f"**Winner: `{res.winner}`**"):]))
    print(f"\nwrote {args.results} and {res.paths['markdown']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
