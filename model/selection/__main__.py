"""CLI: ``python -m model.selection --candidates examples/candidates.yaml --gold dev.txt ...``.

Annotates an entity-rich (or random) gold sample with every candidate R times, writes
``<out>/selection.json``, ``report.md``, ``report.html``, plots, and the winner's ``llm.env``.
Interrupting and re-running resumes: finished runs are reused, answered requests come from the
LLM cache in ``--store``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from model.conll import read_conll
from model.human_agreement import DEFAULT_DIR, human_reference
from model.languages import language_name
from model.selection.report import format_usd
from model.selection.candidates import CandidateError, load_candidates
from model.selection.rule import ChoiceRule
from model.selection.run import GoldSample, run_selection
from model.sampling import SAMPLERS, sample_gold



def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m model.selection", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--candidates", required=True, help="YAML or JSON candidate list")
    p.add_argument("--gold", required=True, help="CoNLL file (token TAG per line) to sample from")
    p.add_argument("-n", "--sample-size", type=int, default=50, help="gold sentences (default 50)")
    p.add_argument("--sampler", choices=SAMPLERS, default="entity-rich")
    p.add_argument("--seed", type=int, default=42, help="sampling and bootstrap seed (default 42)")
    p.add_argument("-r", "--runs", type=int, default=5, help="annotations per sentence and candidate")
    p.add_argument("--language", help="language named in the prompt (default: from a MasakhaNER "
                   "path such as .../hau/dev.txt, else LLM_LANGUAGE)")
    p.add_argument("--examples", help="CoNLL file to draw few-shot examples from (a train split; "
                   "the paper uses 2 per language)")
    p.add_argument("--n-examples", type=int, default=2)
    p.add_argument("--out", default="selection-out", help="output directory")
    p.add_argument("--store", help="LLM cache + ledger directory (default <out>/llm-store)")
    p.add_argument("--write-env", help="where the winner's env file goes (default <out>/llm.env)")
    p.add_argument("--force", action="store_true", help="recompute candidates with saved results")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples for 95 %% CIs")
    g = p.add_argument_group("choice rule")
    g.add_argument("--min-alpha", type=float, default=0.8, help="min self-agreement alpha (0.8)")
    g.add_argument("--max-failure-rate", type=float, default=0.05, help="max format failures (0.05)")
    g.add_argument("--max-cost-per-1k", type=float, default=None, help="cost cap, USD / 1k sentences")
    g.add_argument("--tie-points", type=float, default=0.5, help="F1 points that count as a tie (0.5)")
    g.add_argument("--f1", choices=("mean", "majority"), default="mean",
                   help="F1 over runs (mean) or of the majority vote")
    h = p.add_argument_group("human reference")
    h.add_argument("--human-ref", default=str(DEFAULT_DIR), help="masakhaner-iaa directory ('' = none)")
    h.add_argument("--human-langs", nargs="*", help="only these languages (file stems)")
    p.add_argument("--no-progress", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        cands = load_candidates(args.candidates)
        rule = ChoiceRule(args.min_alpha, args.max_failure_rate, args.max_cost_per_1k,
                          args.tie_points, f"f1_{args.f1}")
    except (CandidateError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    gold = GoldSample.from_conll(args.gold, args.sample_size, args.sampler, args.seed)
    language = args.language or language_name(Path(args.gold).parent.name)
    examples = []
    if args.examples:
        pool = [(s[0], s[1]) for s in read_conll(args.examples) if s[0] not in gold.tokens]
        examples = sample_gold(pool, args.n_examples, sampler="entity-rich", seed=args.seed)[0]
    out = Path(args.out)
    human = None
    if args.human_ref and Path(args.human_ref).is_dir():
        human = human_reference(args.human_ref, args.human_langs, cache=out / "human_reference.json")
    res = run_selection(cands, gold, runs=args.runs, store_dir=args.store or out / "llm-store",
                        out_dir=out, rule=rule, progress=not args.no_progress, language=language,
                        examples=examples,
                        force=args.force, n_boot=args.n_boot, seed=args.seed, human_reference=human,
                        write_env=args.write_env)
    for r in res.decision.ranking:
        m = res.metrics[r.name]
        why = "chosen" if r.name == res.winner else "; ".join(r.reasons)
        print(f"{r.rank}. {r.name}: F1 {100 * m['f1_mean']:.1f}, alpha {m['alpha_runs']:.3f}, "
              f"failures {m['format_failure_rate']:.1%}, cost/1k {format_usd(m['cost_per_1k_usd'])} - {why}")
    for name, err in res.errors.items():
        print(f"-. {name}: not run ({err})")
    print(f"report: {res.paths['markdown']}" + (f"; env: {res.env_path}" if res.env_path else "; no winner"))
    return 0 if res.winner else 1


if __name__ == "__main__":
    sys.exit(main())
