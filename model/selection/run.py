"""The selection run: every candidate annotates the same gold sample R times, then the rule picks.

Resumability, two layers:
1. each finished run of a candidate is saved at once (``<out>/candidates/<name>/run-<r>.json``,
   with its token usage), and a finished candidate's figures in ``<out>/candidates/<name>.json``;
   a re-run skips both (unless ``force``), so it makes no LLM call and keeps the real token and
   cost figures of the first run;
2. inside an interrupted run, the LLM annotator's persistent cache (``store_dir``) serves every
   request that was already answered; only the rest is paid for.
Saved results are tied to the gold sample and run settings by a fingerprint, so a changed sample
never reuses stale answers.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from model.conll import read_conll
from model.selection.candidates import Candidate
from model.selection.evaluate import evaluate
from model.selection.report import write_report
from model.selection.rule import ChoiceRule, Decision, choose
from model.sampling import SampleInfo, sample_gold

Progress = Callable[[int, int, str], None]


@dataclass
class GoldSample:
    """The sentences every candidate annotates, with their gold tags and where they came from."""

    tokens: list[list[str]]
    tags: list[list[str]]
    source: str = "in-memory"
    info: SampleInfo | None = None

    @classmethod
    def from_pairs(cls, pairs: Sequence[tuple[Sequence[str], Sequence[str]]],
                   source: str = "Label Studio annotations") -> GoldSample:
        """From ``(tokens, tags)`` pairs, e.g. a Label Studio project's finished annotations."""
        pairs = [(list(t), list(g)) for t, g in pairs]
        for i, (t, g) in enumerate(pairs):
            if len(t) != len(g) or not t:
                raise ValueError(f"gold sentence {i}: {len(t)} tokens but {len(g)} tags")
        info = SampleInfo("given", 0, len(pairs), len(pairs), len(pairs), 0, tuple(range(len(pairs))))
        return cls([p[0] for p in pairs], [p[1] for p in pairs], source, info)

    @classmethod
    def from_examples(cls, examples: Sequence, source: str = "Label Studio annotations") -> GoldSample:
        """From labelled ``model.types.Example`` tasks (character spans, as Label Studio stores
        them): tokenized with ``model.tokenize`` and converted to BIO; empty texts are skipped."""
        from model.tokenize import spans_to_bio, tokenize

        pairs = []
        for ex in examples:
            toks = tokenize(ex.text)
            if toks:
                pairs.append(([t.text for t in toks], spans_to_bio(toks, ex.spans)))
        return cls.from_pairs(pairs, source)

    @classmethod
    def from_conll(cls, path: str | Path, n: int, sampler: str = "entity-rich", seed: int = 42) -> GoldSample:
        sents = read_conll(path)
        picked, info = sample_gold([(s[0], s[1]) for s in sents], n, sampler=sampler, seed=seed)
        return cls([p[0] for p in picked], [p[1] for p in picked], str(path), info)

    @property
    def labels(self) -> list[str]:
        return sorted({t[2:] for s in self.tags for t in s if t != "O"})

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps([self.tokens, self.tags]).encode()).hexdigest()[:16]


@dataclass
class SelectionResult:
    decision: Decision
    metrics: dict[str, dict]
    errors: dict[str, str]
    out_dir: Path
    env_path: Path | None
    paths: dict[str, str] = field(default_factory=dict)
    calls_made: int = 0     # runs that went to the annotator in this invocation (0 = all reused)

    @property
    def winner(self) -> str | None:
        return self.decision.winner

    def as_dict(self) -> dict:
        """A JSON-ready summary (e.g. for a backend job's result); the full figures are in
        ``paths["json"]``."""
        return {"winner": self.winner, "ranking": self.decision.as_dict()["ranking"],
                "rule": self.decision.rule.describe(), "errors": dict(self.errors),
                "env_file": str(self.env_path) if self.env_path else None, "paths": dict(self.paths),
                "runs_sent_to_annotator": self.calls_made}


def _write_json(path: Path, obj) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)       # atomic: a kill never leaves half a file behind


def _annotator(cand: Candidate, store_dir: Path, environ: Mapping[str, str]):
    from model.llm.annotator import LLMAnnotator
    from model.llm.config import LLMConfig

    env = cand.env(environ)
    if cand.api_key_env and not env.get("LLM_API_KEY"):
        raise RuntimeError(f"environment variable {cand.api_key_env} is not set")
    # local OpenAI-compatible servers (vLLM, llama.cpp) need no key, but the annotator treats an
    # empty key as "LLM off"; "EMPTY" is vLLM's own convention for "no key"
    env.setdefault("LLM_API_KEY", "EMPTY")
    return LLMAnnotator(LLMConfig.from_env(env), store_dir)


def _annotate_run(ann, gold: GoldSample, r: int, labels, language, examples, project) -> dict:
    tts = ann.tag_tokens(gold.tokens, labels, n_samples=1, project=project, language=language,
                         examples=examples, sample_offset=r)
    return {"samples": [tt.samples[0] for tt in tts],
            "repaired": [bool(tt.repaired[0]) if tt.repaired else False for tt in tts],
            "latency_s": [tt.latency_s[0] if tt.latency_s else None for tt in tts],
            "errors": [list(tt.errors) for tt in tts],
            "usage": [[int(tt.tokens_in), int(tt.tokens_out), float(tt.cost_usd)] for tt in tts]}


def _carry_usage(new: dict, old: dict | None) -> None:
    """On ``force``, answers come back from the LLM cache at 0 tokens: keep the usage the
    earlier run really paid for the same answer, so the cost figure stays the real one."""
    if not old:
        return
    for s, (u, o) in enumerate(zip(new["usage"], old["usage"])):
        if u[0] + u[1] == 0 and o[0] + o[1] > 0 and new["samples"][s] == old["samples"][s]:
            new["usage"][s] = o
            new["latency_s"][s] = old["latency_s"][s]


def _close(ann) -> None:
    """Release the annotator's sqlite handles (one candidate at a time keeps file handles few)."""
    for part in ("cache", "ledger"):
        closer = getattr(getattr(ann, part, None), "close", None)
        if closer is not None:
            closer()


def _merge_runs(done: list[dict]) -> dict:
    n = len(done[0]["samples"])
    return {"samples": [[d["samples"][s] for d in done] for s in range(n)],
            "repaired": [[d["repaired"][s] for d in done] for s in range(n)],
            "latency_s": [[d["latency_s"][s] for d in done] for s in range(n)],
            "errors": [[d["errors"][s] for d in done] for s in range(n)],
            "usage": [[d["usage"][s] for d in done] for s in range(n)]}


def run_selection(candidates: Sequence[Candidate], gold: GoldSample | Sequence[tuple], *, runs: int = 5,
                  store_dir: str | Path, out_dir: str | Path, rule: ChoiceRule | None = None,
                  progress: bool | Progress = True, labels: Sequence[str] | None = None,
                  language: str | None = None, examples: Sequence = (), force: bool = False,
                  environ: Mapping[str, str] | None = None, n_boot: int = 1000, seed: int = 42,
                  human_reference: list[dict] | None = None, write_env: str | Path | None = None,
                  project: str = "selection") -> SelectionResult:
    """Annotate ``gold`` ``runs`` times with every candidate, score, choose, and write the report.

    ``gold``: a ``GoldSample`` or ``(tokens, tags)`` pairs (e.g. a Label Studio project's
    annotations, converted with ``model.tokenize.spans_to_bio``). ``examples``: few-shot
    ``(tokens, tags)`` pairs for the prompt (never from the gold sample or a test split).

    ``progress``: True for a tqdm bar over candidates x runs, False for none, or a callable
    ``(done, total, description)`` (the backend job reports it as job meta). ``write_env``: where
    the winner's ``llm.env`` goes (default ``<out_dir>/llm.env``); nothing is written without a
    winner. A candidate that cannot run (missing key variable, server down) is reported with its
    error instead of stopping the others.
    """
    if runs < 1:
        raise ValueError("runs must be >= 1")
    if not isinstance(gold, GoldSample):
        gold = GoldSample.from_pairs(gold)
    rule = rule or ChoiceRule()
    environ = os.environ if environ is None else environ
    labels = list(labels) if labels else gold.labels
    out_dir, store_dir = Path(out_dir), Path(store_dir)
    cand_dir = out_dir / "candidates"
    cand_dir.mkdir(parents=True, exist_ok=True)
    stamp = {"gold": gold.fingerprint(), "runs": runs, "labels": labels, "language": language,
             "n_boot": n_boot, "seed": seed,
             "examples": hashlib.sha256(repr(list(examples)).encode()).hexdigest()[:16]}
    total, done_steps, calls = len(candidates) * runs, 0, 0
    bar = None
    if progress is True:
        from tqdm import tqdm

        bar = tqdm(total=total, desc="selection", unit="run")

    def tick(desc: str) -> None:
        nonlocal done_steps
        done_steps += 1
        if bar is not None:
            bar.set_postfix_str(desc)
            bar.update(1)
        elif callable(progress):
            progress(done_steps, total, desc)

    metrics, errors, public = {}, {}, {}
    for cand in candidates:
        public[cand.name] = cand.public_dict()
        result_path = cand_dir / f"{cand.name}.json"
        stamp_c = {**stamp, "candidate": cand.public_dict()}
        if not force and result_path.is_file():
            saved = json.loads(result_path.read_text(encoding="utf-8"))
            if saved.get("stamp") == stamp_c:
                metrics[cand.name] = saved["metrics"]
                for r in range(runs):
                    tick(f"{cand.name} (saved)")
                continue
        run_dir = cand_dir / cand.name
        run_dir.mkdir(exist_ok=True)
        done: list[dict] = []
        ann = None
        try:
            for r in range(runs):
                path = run_dir / f"run-{r}.json"
                old = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
                saved = None if force or not old or old.get("stamp") != stamp_c else old
                if saved is None:
                    ann = ann or _annotator(cand, store_dir, environ)
                    saved = {"stamp": stamp_c, **_annotate_run(ann, gold, r, labels, language, examples, project)}
                    _carry_usage(saved, old if old and old.get("stamp") == stamp_c else None)
                    calls += 1
                    _write_json(path, saved)
                done.append(saved)
                tick(f"{cand.name} run {r + 1}/{runs}")
        except Exception as exc:  # noqa: BLE001 - one broken candidate must not stop the others
            errors[cand.name] = f"{type(exc).__name__}: {exc}"
            for _ in range(runs - len(done)):
                tick(f"{cand.name} failed")
            continue
        finally:
            _close(ann)
        raw = _merge_runs(done)
        metrics[cand.name] = evaluate(gold.tags, raw, n_boot=n_boot, seed=seed)
        _write_json(result_path, {"stamp": stamp_c, "metrics": metrics[cand.name], "raw": raw})
    if bar is not None:
        bar.close()

    decision = choose(metrics, rule)
    env_path = None
    if decision.winner:
        env_path = Path(write_env) if write_env else out_dir / "llm.env"
        write_env_file(next(c for c in candidates if c.name == decision.winner), env_path)
    info = gold.info
    doc = {"created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "sample": {"source": gold.source, "sampler": info.sampler if info else "given",
                      "seed": info.seed if info else None, "pool": info.pool if info else len(gold.tags),
                      "eligible": info.eligible if info else len(gold.tags), "drawn": len(gold.tags),
                      "shortfall": info.shortfall if info else 0, "indices": list(info.indices) if info else [],
                      "tokens": sum(len(t) for t in gold.tags)},
           "runs": runs, "labels": labels, "language": language, "n_boot": n_boot, "seed": seed,
           "decision": decision.as_dict(),
           "candidates": {n: {"candidate": public[n], "metrics": m} for n, m in metrics.items()},
           "errors": errors, "human_reference": human_reference,
           "env_file": str(env_path) if env_path else None}
    paths = write_report(doc, out_dir)
    return SelectionResult(decision, metrics, errors, out_dir, env_path, paths, calls)


def write_env_file(cand: Candidate, path: str | Path) -> Path:
    """The winner as ``LLM_*`` lines the backend's settings read; the key's *variable name* only."""
    lines = ["# written by python -m model.selection: the chosen LLM annotator",
             f"LLM_BASE_URL={cand.base_url}", f"LLM_MODEL={cand.model}",
             f"LLM_TEMPERATURE={cand.temperature}", f"LLM_PRICE_IN_PER_1K={cand.price_in_per_1k}",
             f"LLM_PRICE_OUT_PER_1K={cand.price_out_per_1k}"]
    lines += [f"LLM_{str(k).upper()}={v}" for k, v in cand.options.items()]
    if cand.api_key_env:
        lines += [f"# set LLM_API_KEY from ${cand.api_key_env}; the key itself is never written here",
                  f"LLM_API_KEY_ENV={cand.api_key_env}"]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
