"""What learning word classes from a project's raw text costs a retrain, on a 10,000-task project.

The project: 10,000 MasakhaNER 2.0 kin sentences (train, then dev, then test) as task texts, 500 of
them annotated. Measured in one run, on the served path (``LocalModel.fit`` with the texts and a
per-project cache folder, as ``backend.ml`` calls it):

* the first retrain (classes learnt and written to the cache) vs a retrain that finds them cached
  (same texts, or grown by less than 20 %), vs the same fit without word classes (the baseline);
  the cached retrain both with the texts in hand and as the backend calls it (the count of
  unlabelled tasks, the texts listed only when the cache is not fresh);
* the parts: tokenising the 10,000 texts, learning the classes, the cache file's size, and the
  saved version's size with and without them;
* ``predict`` on 100 texts from the saved version (the request path reads the classes from the
  version, never relearns them).

Run: ``PYTHONPATH=. .venv/bin/python -m benchmarks.bench_clusters`` (single-threaded).
"""
from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path
from model.shared_data import MASAKHANER2

NER = MASAKHANER2


def _dir_bytes(d: Path) -> int:
    return sum(p.stat().st_size for p in d.rglob("*") if p.is_file())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lang", default="kin")
    p.add_argument("--tasks", type=int, default=10_000)
    p.add_argument("--labelled", type=int, default=500)
    p.add_argument("--model", default="crf", choices=["crf", "tagger"])
    args = p.parse_args(argv)
    import torch
    torch.set_num_threads(1)

    from model.conll import read_conll
    from model.local import LocalModel
    from model.ner import clusters as cl
    from model.ner.spans import bio_entities
    from model.spec import NERControl, TaskSpec
    from model.tokenize import join_tokens, tokenize
    from model.types import Example, Span

    sents = [s for split in ("train", "dev", "test") for s in read_conll(NER / args.lang / f"{split}.txt")]
    sents = sents[:args.tasks]
    if len(sents) < args.tasks:
        raise SystemExit(f"{args.lang} has only {len(sents)} sentences")
    labels = sorted({t[2:] for _, tags in sents for t in tags if t != "O"})
    spec = TaskSpec(ner=NERControl("label", "text", "text", tuple(labels)))
    examples, texts = [], []
    for k, (toks, tags) in enumerate(sents):
        text, offs = join_tokens(toks)
        if k < args.labelled:
            examples.append(Example(text, [Span(offs[a].start, offs[b - 1].end, lab)
                                           for a, b, lab in bio_entities(tags)]))
        else:
            texts.append(text)
    work = Path(tempfile.mkdtemp(prefix="bench-clusters-"))
    out: dict = {"lang": args.lang, "tasks": len(sents), "labelled": len(examples), "model": args.model}
    try:
        def fit(unlabelled, clusters=True, n=None):
            t = time.perf_counter()
            m = LocalModel(spec, ner_model=args.model, word_clusters=clusters).fit(
                examples, unlabelled_texts=unlabelled, cluster_dir=work / "cache", n_unlabelled=n)
            return m, time.perf_counter() - t

        base, out["fit_s_without_classes"] = fit([], clusters=False)
        first, out["fit_s_first_retrain"] = fit(texts)
        out["first_retrain_metrics"] = {k: first.metrics_.get(k) for k in
                                        ("clusters", "cluster_seconds", "cluster_sentences", "tokenise_seconds")}
        cl._MEMORY.clear()  # a restarted worker: the classes come from the cache file
        cl._LEARNT.clear()
        again, out["fit_s_cached_retrain"] = fit(texts)
        out["cached_retrain_metrics"] = {k: again.metrics_.get(k) for k in ("clusters", "cluster_seconds")}
        # as the backend calls it: the count, and a listing that is not needed while the cache is fresh
        listed = []
        counted, out["fit_s_cached_retrain_backend_path"] = fit(lambda: listed.append(1) or texts, n=len(texts))
        out["backend_path_listed_texts"] = bool(listed)
        out["n_word_classes"] = len(first.tagger_.clusters)
        out["cache_file_bytes"] = (work / "cache" / "clusters.json").stat().st_size
        first.save(work / "v_with")
        base.save(work / "v_without")
        out["version_bytes_with_classes"] = _dir_bytes(work / "v_with")
        out["version_bytes_without"] = _dir_bytes(work / "v_without")
        t = time.perf_counter()
        loaded = LocalModel.load(work / "v_with")
        out["load_s"] = round(time.perf_counter() - t, 3)
        t = time.perf_counter()
        loaded.predict(texts[:100])
        out["predict_100_s"] = round(time.perf_counter() - t, 3)
        t = time.perf_counter()
        cl.learn_clusters([[tok.text for tok in tokenize(x)] for x in [e.text for e in examples] + texts])
        out["learn_only_s"] = round(time.perf_counter() - t, 3)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for k, v in list(out.items()):
        if isinstance(v, float):
            out[k] = round(v, 3)
    print(json.dumps(out, indent=1))
    Path("benchmarks/out").mkdir(parents=True, exist_ok=True)
    Path(f"benchmarks/out/bench_clusters_{args.lang}_{args.model}.json").write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
