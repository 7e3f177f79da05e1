"""Command line: ``python -m model.llm annotate ...`` and ``python -m model.llm ledger``.

The LLM is configured from the environment (``LLM_*``, see ``model.llm.config``). A CoNLL input
is tagged on its own tokens (``tag_tokens``); a MasakhaNEWS TSV is classified (``annotate``).
When the input carries gold labels, the agreement with them is printed next to the cost.
``annotate --dry-run`` prints the projected cost and makes no call. The exit status is 1 when
nothing could be annotated (the reason is printed once), 2 for a configuration error. The store
(cache, ledger, learnt server capabilities) is ``--store``, else ``LLM_STORE_DIR``, else
``MODEL_DIR/llm`` as the backend uses it, else ``var/llm``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from pathlib import Path

from model.conll import read_conll, read_news_tsv
from model.llm.annotator import LLMAnnotator
from model.llm.confidence import majority_tags
from model.llm.config import ConfigError, LLMConfig
from model.spec import ChoicesControl, TaskSpec


def _entity_f1(pred: list[list[str]], gold: list[list[str]]) -> float:
    from seqeval.metrics import f1_score
    return float(f1_score(gold, pred))


def default_store(env) -> str:
    """The CLI's store: the backend's (``MODEL_DIR/llm``) unless told otherwise."""
    if env.get("LLM_STORE_DIR"):
        return env["LLM_STORE_DIR"]
    return str(Path(env.get("MODEL_DIR") or "var") / "llm")


def _label_map(raw: str | None) -> dict | None:
    if not raw:
        return None
    value = json.loads(raw)
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                              for k, v in value.items()):
        raise ValueError("--label-map must be a JSON object of label -> label, e.g. "
                         '\'{"GPE": "LOC"}\'')
    return value


def _unknown(counts) -> dict:
    total: dict[str, int] = {}
    for c in counts:
        for lab, n in c.items():
            total[lab] = total.get(lab, 0) + n
    return dict(sorted(total.items(), key=lambda kv: -kv[1]))


def _annotate(args, ann: LLMAnnotator) -> int:
    path = Path(args.input)
    label_map = _label_map(args.label_map)
    before = ann.ledger.summary(args.project)
    out_rows, report, errors = [], {}, []
    if path.suffix == ".tsv":
        texts, gold = read_news_tsv(path)
        texts, gold = texts[:args.limit], gold[:args.limit]
        choices = tuple(args.labels or sorted(set(gold)))
        spec = TaskSpec(choices=ChoicesControl("label", "text", "text", choices))
        if args.dry_run:
            print(json.dumps({"dry_run": True, **ann.project_texts(texts, spec,
                                                                   language=args.language)},
                             indent=2))
            return 0
        results = ann.annotate(texts, spec, project=args.project, language=args.language,
                               progress=True)
        for text, g, r in zip(texts, gold, results):
            out_rows.append({"text": text, "choices": r.choices, "score": r.score,
                             "error": r.error, "repaired": r.repaired, "gold": g})
            if r.error:
                errors.append(r.error.split(": ", 1)[-1])
        ok = [(r, g) for r, g in zip(results, gold) if r.choices]
        report["accuracy_vs_gold"] = round(sum(r.choices[0][0] == g for r, g in ok)
                                           / max(1, len(ok)), 4)
    else:
        sents = read_conll(path)[:args.limit]
        labels = args.labels or ["PER", "ORG", "LOC", "DATE"]
        if args.dry_run:
            print(json.dumps({"dry_run": True, **ann.project_cost(
                [t for t, _ in sents], labels, language=args.language)}, indent=2))
            return 0
        runs = ann.tag_tokens([t for t, _ in sents], labels, n_samples=ann.config.samples,
                              project=args.project, language=args.language, progress=True,
                              label_map=label_map)
        report["unknown_labels_read_as_O"] = _unknown(tt.unknown_labels for tt in runs)
        preds, golds = [], []
        for (toks, gold), tt in zip(sents, runs):
            ok = [s for s in tt.samples if s is not None]
            tags = majority_tags(ok)[0] if ok else None
            out_rows.append({"tokens": toks, "tags": tags, "samples": tt.samples,
                             "errors": tt.errors, "repaired": tt.repaired, "gold": gold})
            if tags is not None:
                preds.append(tags)
                golds.append(gold)
            else:
                errors.extend(e.split(": ", 1)[-1] for e in tt.errors[:1])
        report["entity_f1_vs_gold"] = round(_entity_f1(preds, golds), 4) if preds else None
        report["token_accuracy_vs_gold"] = round(
            sum(p == g for ps, gs in zip(preds, golds) for p, g in zip(ps, gs))
            / max(1, sum(map(len, golds))), 4)
    with open(args.output, "w", encoding="utf-8") as fh:
        for row in out_rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    after = ann.ledger.summary(args.project)
    failed = sum(1 for r in out_rows if r.get("error") or (r.get("tags", []) is None))
    report.update(items=len(out_rows), failed=failed,
                  calls=after["calls"] - before["calls"],
                  cache_hits=after["cache_hits"] - before["cache_hits"],
                  tokens_in=after["tokens_in"] - before["tokens_in"],
                  tokens_out=after["tokens_out"] - before["tokens_out"],
                  cost_usd=round(after["cost_usd"] - before["cost_usd"], 6),
                  cost_estimated_usd=round(after["estimated_cost_usd"]
                                           - before["estimated_cost_usd"], 6))
    print(json.dumps(report, indent=2))
    print(f"wrote {len(out_rows)} rows to {args.output}", file=sys.stderr)
    if errors:
        top = Counter(errors).most_common(1)[0]
        print(f"{'error' if failed == len(out_rows) else 'warning'}: {failed} of "
              f"{len(out_rows)} items failed; {top[1]} of them: {top[0]}", file=sys.stderr)
    return 1 if out_rows and failed == len(out_rows) else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m model.llm", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", default=default_store(os.environ),
                    help="directory of the response cache and the ledger (default: "
                         "$LLM_STORE_DIR, else $MODEL_DIR/llm like the backend, else var/llm)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("annotate", help="annotate a CoNLL (NER) or TSV (classification) file")
    a.add_argument("--input", required=True, help="file.conll / .txt (CoNLL) or file.tsv")
    a.add_argument("--output", required=True, help="JSONL output, one row per item")
    a.add_argument("--language", default=None, help="language named in the prompt")
    a.add_argument("--labels", nargs="*", help="entity types (NER) or choices (TSV)")
    a.add_argument("--project", default="cli", help="ledger project name")
    a.add_argument("--limit", type=int, default=None, help="only the first N items")
    a.add_argument("--dry-run", action="store_true",
                   help="print the projected requests, tokens and cost; make no call")
    a.add_argument("--label-map", default=None,
                   help='JSON of the model\'s labels to yours, e.g. \'{"GPE": "LOC"}\' '
                        '("O" drops one); applied before the built-in synonyms')
    led = sub.add_parser("ledger", help="print tokens and cost per project and model")
    led.add_argument("--project", default=None)
    args = ap.parse_args(argv)
    try:
        cfg = LLMConfig.from_env(os.environ)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    ann = LLMAnnotator(cfg, Path(args.store))
    if args.cmd == "ledger":
        print(json.dumps(ann.ledger.summary(args.project), indent=2))
        return 0
    if not ann.enabled:
        print(f"error: {ann.status()['reason']}", file=sys.stderr)
        return 2
    try:
        return _annotate(args, ann)
    except ValueError as exc:  # a bad --label-map or input file: one line, no traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
