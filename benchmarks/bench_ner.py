"""MasakhaNER 2.0: our NERTagger vs the plain CRF baseline, measured in the same run.

For each language and training size (random sentences, one subset per seed; ``full`` = the whole
train split) both models are fitted on the same sentences and scored on the test split with
seqeval entity F1 (strict spans, default mode). Prints mean ± sd over seeds, fit time, prediction
throughput and the process's peak memory; writes benchmarks/out/ner.json and
benchmarks/results/ner.md.

    python -m benchmarks.bench_ner --langs hau yor swa --sizes 250 500 1000 full --seeds 3
"""
from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np
import torch
from seqeval.metrics import f1_score
from tqdm import tqdm

from benchmarks.crf_baseline import CRFBaseline
from model.conll import read_aux_corpora, read_conll
from model.ner.tagger import NERTagger
from model.shared_data import MASAKHANER2

DATA = MASAKHANER2
OUT = Path(__file__).resolve().parent / "out"
RESULTS = Path(__file__).resolve().parent / "results" / "ner.md"
AFROXLMR = {"hau": 86.7, "yor": 88.2, "swa": 92.5}  # published, shared/README.md


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_one(model, X, y, X_test, y_test) -> dict:
    t0, c0 = time.perf_counter(), time.process_time()
    model.fit(X, y)
    fit_s, fit_cpu = time.perf_counter() - t0, time.process_time() - c0
    t0 = time.perf_counter()
    pred = model.predict(X_test)
    pred_s = time.perf_counter() - t0
    return {"f1": 100 * f1_score(y_test, pred), "fit_s": fit_s, "fit_cpu_s": fit_cpu, "per_s": len(X_test) / pred_s,
            "epochs": getattr(model, "n_epochs_", None)}


def fmt(vals) -> str:
    return f"{np.mean(vals):.1f} ± {np.std(vals):.1f}" if len(vals) > 1 else f"{vals[0]:.1f}"


def table(rows, lang, sizes) -> list[str]:
    lines = [f"## {lang}" + (f" (AfroXLMR-large, published: {AFROXLMR[lang]})" if lang in AFROXLMR
                             else ""), "",
             "| train sentences | ours F1 | CRF F1 | ours fit s (wall / CPU) | CRF fit s (wall / CPU) "
             "| ours sent/s | CRF sent/s | ours epochs | seeds |",
             "|---|---|---|---|---|---|---|---|---|"]
    for size, aux in ((s, a) for s in sizes for a in (0, 1)):
        sel = [r for r in rows if r["lang"] == lang and r["size"] == size and bool(r.get("n_aux")) == aux]
        o = [r for r in sel if r["model"] == "ours"]
        c = [r for r in sel if r["model"] == "crf"]
        if not o:
            continue
        lines.append(
            f"| {size}{' (' + str(o[0]['n']) + ')' if size == 'full' else ''}"
            f"{' + ' + format(o[0]['n_aux'], ',') + ' aux' if aux else ''} "
            f"| {fmt([r['f1'] for r in o])} | {fmt([r['f1'] for r in c])} "
            f"| {np.mean([r['fit_s'] for r in o]):.0f} / {np.mean([r['fit_cpu_s'] for r in o]):.0f} "
            f"| {np.mean([r['fit_s'] for r in c]):.0f} / {np.mean([r['fit_cpu_s'] for r in c]):.0f} "
            f"| {np.mean([r['per_s'] for r in o]):.0f} | {np.mean([r['per_s'] for r in c]):.0f} "
            f"| {np.mean([r['epochs'] for r in o]):.0f} | {len(o)} |")
    return lines + [""]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--langs", nargs="+", default=["hau", "yor", "swa"])
    ap.add_argument("--sizes", nargs="+", default=["250", "500", "1000", "full"])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--full-seeds", type=int, default=None,
                    help="seeds for the 'full' size (default: --seeds); full runs are the costly ones")
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--hyper", type=json.loads, default={},
                    help='NERTagger hyperparameters as JSON, e.g. \'{"hidden": 64}\'')
    ap.add_argument("--aux", nargs="*", default=[], metavar="LANG",
                    help="also fit both models on a sample of these languages' labelled train sets "
                         "plus the same subset (cross-lingual transfer, NER_AUX_DATA), beside the "
                         "plain fits of the same run")
    ap.add_argument("--aux-max", type=int, default=2000, help="aux sentences sampled (NER_AUX_MAX)")
    ap.add_argument("--out", type=Path, default=RESULTS, help="Markdown results file")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    full_seeds = args.full_seeds if args.full_seeds is not None else args.seeds
    # seed 0 of every (language, size) first, extra seeds after: a run cut short still covers
    # every cell once
    jobs = sorted(((lang, size, seed) for lang in args.langs for size in args.sizes
                   for seed in range(full_seeds if size == "full" else args.seeds)),
                  key=lambda j: (j[2] > 0, j[2]))
    rows: list[dict] = []
    data = {}
    OUT.mkdir(parents=True, exist_ok=True)
    for lang, size, seed in tqdm(jobs, desc="ner"):
        if lang not in data:
            data[lang] = (read_conll(args.data / lang / "train.txt"),
                          read_conll(args.data / lang / "test.txt"))
        train, test = data[lang]
        if size == "full":
            sub = train
        else:
            idx = np.random.default_rng(seed).permutation(len(train))[:int(size)]
            sub = [train[i] for i in idx]
        X, y = [s[0] for s in sub], [s[1] for s in sub]
        X_test, y_test = [s[0] for s in test], [s[1] for s in test]
        labels = sorted({t[2:] for tags in y for t in tags if t != "O"})
        aux_sets = [([], [])]
        if args.aux:
            aux_sets.append(read_aux_corpora([args.data / a / "train.txt" for a in args.aux if a != lang],
                                             labels, args.aux_max, seed))
        for aux_x, aux_y in aux_sets:
            for name, model in (("ours", NERTagger(seed=seed, **args.hyper)), ("crf", CRFBaseline())):
                r = run_one(model, aux_x + X, aux_y + y, X_test, y_test)
                rows.append({"lang": lang, "size": size, "seed": seed, "model": name, "n": len(X),
                             "n_aux": len(aux_x), **r, "peak_mb": peak_mb()})
                tqdm.write(json.dumps(rows[-1]))
        (OUT / "ner.json").write_text(json.dumps(rows, indent=1))  # partial results survive
        write_markdown(args, rows, partial=True)
    print(write_markdown(args, rows, partial=False))


def write_markdown(args, rows, partial: bool) -> str:
    lines = ["# NER (MasakhaNER 2.0 test): NERTagger vs CRF baseline", "",
             "Entity F1 (seqeval, strict spans), mean ± sd over seeds (random training subsets); "
             "fit (wall seconds) and predict timed with torch.set_num_threads("
             f"{args.threads}) on a 2-core machine shared with other jobs.", "",
             f"Command: `python -m benchmarks.bench_ner --langs {' '.join(args.langs)} --sizes "
             f"{' '.join(args.sizes)} --seeds {args.seeds}"
             + (f" --full-seeds {args.full_seeds}" if args.full_seeds is not None else "")
             + (f" --hyper '{json.dumps(args.hyper)}'" if args.hyper else "")
             + (f" --aux {' '.join(args.aux)} --aux-max {args.aux_max}" if args.aux else "") + "`", ""]
    if partial:
        lines += ["**Partial results: the run is still going (or was stopped).**", ""]
    for lang in args.langs:
        lines += table(rows, lang, args.sizes)
    lines.append(f"Peak memory of the benchmark process (ru_maxrss): {peak_mb():.0f} MB.")
    text = "\n".join(lines)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n", encoding="utf-8")
    return text


if __name__ == "__main__":
    main()
