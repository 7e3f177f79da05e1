"""Request scheduling: batches of sentences, samples, re-asks, a bounded thread pool.

One *unit* is a batch of up to ``LLM_SENTENCES_PER_REQUEST`` sentences (or one text to
classify) with all its samples, asked in one request (``n`` samples) when the server allows.
Each (sentence, sample) whose reply cannot be parsed or repaired is re-asked alone, with the
parser's error message in the prompt, at most ``MAX_REASKS`` times. A truncated reply
(``finish_reason == "length"``) keeps every complete sentence object in it; only the missing
sentences are asked again, after the first pass, packed with other truncated replies' leftovers
into requests of the usual size, with twice the token allowance. A refusal is reported, not
re-asked. An ``LLMFatalError`` (wrong key, model or URL; breaker open) stops the run: the
remaining units get that one message without a call. What still fails keeps its reason:
nothing is dropped silently.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field

from tqdm import tqdm

from model.llm import prompts
from model.llm.client import Completion, LLMCallError, LLMClient, LLMFatalError
from model.llm.confidence import choice_probs, ner_reply_probs
from model.llm.ledger import BudgetExceeded
from model.llm.parse import parse_choices, parse_ner

MAX_REASKS = 2
MAX_BATCH_TOKENS = 300


@dataclass
class SampleOutcome:
    tags: list[str] | None = None
    labels: list[str] | None = None
    error: str | None = None
    repairs: list[str] = field(default_factory=list)
    latency_s: float = 0.0
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    cached: bool = True
    span_probs: dict = field(default_factory=dict)
    decision_probs: list[float] = field(default_factory=list)
    choice_probs: dict = field(default_factory=dict)
    unknown_labels: list[str] = field(default_factory=list)
    estimated: bool = False

    def charge(self, comp: Completion, share: float = 1.0) -> None:
        self.latency_s += comp.latency_s
        self.tokens_in += round(comp.tokens_in * share)
        self.tokens_out += round(comp.tokens_out * share)
        self.cost_usd += comp.cost_usd * share
        self.cached = self.cached and comp.cached
        self.estimated = self.estimated or comp.estimated

    def accept(self, res, repairs_before: list[str] = ()) -> None:
        self.tags, self.error = res.tags, None
        self.repairs = list(repairs_before) + res.repairs
        self.unknown_labels = list(res.unknown_labels)


class _Run:
    """One run's shared state: the first fatal error stops every unit still to be asked."""

    def __init__(self) -> None:
        self.fatal: str | None = None

    def stop(self, exc: BaseException) -> str:
        if isinstance(exc, LLMFatalError) and self.fatal is None:
            self.fatal = str(exc)
        return str(exc)


def _truncated(comp: Completion, max_tokens: int) -> str | None:
    if comp.finish_reason == "length":
        return (f"reply truncated at max_tokens={max_tokens} (finish_reason=length); "
                "give the complete JSON, nothing else")
    return None


def _refused(comp: Completion) -> str | None:
    return f"the model refused: {comp.refusal}" if comp.refusal else None


class Engine:
    def __init__(self, client: LLMClient) -> None:
        self.client = client
        self.config = client.config

    def _max_tokens(self, n_tokens: int) -> int:
        return min(self.config.max_tokens, 64 + 16 * n_tokens)

    def _pool(self, units: list, fn: Callable, progress: bool, desc: str) -> None:
        with ThreadPoolExecutor(max_workers=self.config.concurrency) as pool, \
                tqdm(total=len(units), disable=not progress, desc=desc, unit="req") as bar:
            for fut in as_completed([pool.submit(fn, u) for u in units]):
                fut.result()
                bar.update(1)

    # ---- NER --------------------------------------------------------------------------------
    def _ner_units(self, sentences: Sequence[Sequence[str]]) -> list[list[int]]:
        units, cur, cur_len = [], [], 0
        for i, toks in enumerate(sentences):
            if not toks:
                continue
            if cur and (len(cur) >= self.config.sentences_per_request
                        or cur_len + len(toks) > MAX_BATCH_TOKENS):
                units.append(cur)
                cur, cur_len = [], 0
            cur.append(i)
            cur_len += len(toks)
        if cur:
            units.append(cur)
        return units

    def _projection(self, requests: list[tuple[list[dict], int]], n_samples: int,
                    items: int) -> dict:
        """What sending ``requests`` ((messages, max_tokens) each) would cost: estimated prompt
        tokens, the completion-token cap, and the cost range (prompt only .. every allowed
        token), beside the worst case the hard budget reserves."""
        cfg = self.config
        calls = 1 if self.client.n_ok or n_samples == 1 else n_samples
        t_in = sum(calls * self.client.estimate_tokens(m) for m, _ in requests)
        t_out_max = sum(mt * n_samples for _, mt in requests)
        worst = sum(calls * self.client.worst_cost(m, mt, n_samples // calls)
                    for m, mt in requests)
        return {"requests": calls * len(requests), "items": items,
                "prompt_tokens_est": t_in, "completion_tokens_max": t_out_max,
                "prompt_usd_est": round(cfg.cost(t_in, 0), 4),
                "max_usd_est": round(cfg.cost(t_in, t_out_max), 4),
                "reserved_worst_usd": round(worst, 4),
                "budget_usd": cfg.budget_usd or None,
                "budget_left_usd": (round(cfg.budget_usd - self.client.ledger.spent(), 4)
                                    if cfg.budget_usd else None),
                "note": "an estimate before the cache (items answered before cost nothing); "
                        "the spend lies between prompt_usd_est and max_usd_est, plus re-asks "
                        "of unparseable or truncated replies"}

    def project_ner(self, sentences: Sequence[Sequence[str]], labels: Sequence[str],
                    language: str, n_samples: int, fewshot: Callable) -> dict:
        reqs = []
        for batch in self._ner_units(sentences):
            toks = [(j, list(sentences[i])) for j, i in enumerate(batch)]
            msgs = prompts.ner_messages(toks, labels, language,
                                        fewshot(" ".join(t for _, ts in toks for t in ts)))
            reqs.append((msgs, self._max_tokens(sum(len(t) for _, t in toks))))
        return self._projection(reqs, n_samples, sum(1 for s in sentences if s))

    def project_choices(self, texts: Sequence[str], choices: Sequence[str], multi_label: bool,
                        language: str, n_samples: int, fewshot: Callable) -> dict:
        mt = self._max_tokens(4 * len(choices))
        reqs = [(prompts.cls_messages(t, choices, multi_label, language, fewshot(t)), mt)
                for t in texts]
        return self._projection(reqs, n_samples, len(texts))

    def run_ner(self, sentences: Sequence[Sequence[str]], labels: Sequence[str], language: str,
                samples: list[int], project: str, fewshot: Callable, progress: bool = False,
                label_map: dict | None = None, scope: str = "") -> list[list[SampleOutcome]]:
        out = [[SampleOutcome() for _ in samples] for _ in sentences]
        for i, toks in enumerate(sentences):
            if not toks:
                for o in out[i]:
                    o.tags = []
        units = self._ner_units(sentences)
        run = _Run()
        schema = prompts.ner_schema(labels)

        def ask(msgs: list[dict], mt: int, smp: list[int], attempt: int) -> list[Completion]:
            if run.fatal:
                raise LLMFatalError(run.fatal)
            try:
                return self.client.complete(msgs, schema=schema, max_tokens=mt, samples=smp,
                                            project=project, attempt=attempt, scope=scope)
            except (LLMCallError, BudgetExceeded) as exc:
                run.stop(exc)
                raise

        def unit(batch: list[int]) -> None:
            toks = {j: list(sentences[i]) for j, i in enumerate(batch)}
            ex = fewshot(" ".join(t for ts in toks.values() for t in ts))
            n_tok = sum(len(t) for t in toks.values())
            mt = self._max_tokens(n_tok)
            msgs = prompts.ner_messages(list(toks.items()), labels, language, ex)
            try:
                comps = ask(msgs, mt, samples, 0)
            except (LLMCallError, BudgetExceeded) as exc:
                for i in batch:
                    for o in out[i]:
                        o.error = str(exc)
                return
            for k, comp in enumerate(comps):
                trunc, refusal = _truncated(comp, mt), _refused(comp)
                parsed = {} if refusal else parse_ner(comp.content, toks, labels,
                                                      label_map=label_map,
                                                      reasoning=comp.reasoning,
                                                      salvage=bool(trunc))
                probs = {} if trunc or refusal else ner_reply_probs(comp.content, comp.logprobs,
                                                                    parsed)
                missing = []
                for j, i in enumerate(batch):
                    o = out[i][k]
                    o.charge(comp, len(toks[j]) / n_tok)
                    res = parsed.get(j)
                    if refusal:
                        o.error = refusal
                    elif res is not None and res.tags is not None:
                        o.accept(res)
                        o.span_probs, o.decision_probs = probs.get(j, ({}, []))
                    elif trunc:  # cut before this sentence was complete
                        missing.append(j)
                    else:
                        self._reask_ner(ask, o, toks[j], labels, language, ex, samples[k],
                                        res.error, None, label_map)
                with lock:  # asked again after the pass, packed with other replies' leftovers
                    cut.extend((k, batch[j], trunc, mt) for j in missing)

        def reask(group: list[tuple[int, int, str, int]]) -> None:
            k, idx = group[0][0], [i for _, i, _, _ in group]
            toks = [list(sentences[i]) for i in idx]
            self._reask_missing(ask, [out[i][k] for i in idx], toks, labels, language,
                                fewshot(" ".join(t for ts in toks for t in ts)), samples[k],
                                group[0][2], max(m for *_, m in group), label_map)

        lock, cut = threading.Lock(), []
        self._pool(units, unit, progress, "LLM NER")
        if cut:  # sorted: the packing (and so the cache keys) never depends on thread timing
            cut.sort(key=lambda c: (c[0], c[1]))
            self._pool(self._pack(cut, sentences), reask, progress, "LLM NER (truncated)")
        return out

    def _pack(self, cut: list[tuple[int, int, str, int]],
              sentences: Sequence[Sequence[str]]) -> list[list[tuple[int, int, str, int]]]:
        """Sentences truncated replies did not hold, in requests of the usual size per sample:
        two replies cut after half their sentences cost one re-ask, not two (each re-ask pays
        the whole instruction prompt again)."""
        groups: list[list[tuple[int, int, str, int]]] = []
        for k in sorted({c[0] for c in cut}):
            mine = [c for c in cut if c[0] == k]
            groups += [[mine[j] for j in u] for u in self._ner_units([sentences[c[1]] for c in mine])]
        return groups

    def _reask_missing(self, ask, outs: list[SampleOutcome], toks: list[list[str]], labels,
                       language, ex, sample: int, error: str, truncated_at: int,
                       label_map) -> None:
        """The sentences a truncated reply did not hold, asked again together with twice the
        allowance; what still fails goes to the one-sentence re-ask."""
        batch = dict(enumerate(toks))
        mt = min(self.config.max_tokens,
                 max(2 * truncated_at, self._max_tokens(sum(map(len, toks)))))
        if len(toks) > 1:
            msgs = prompts.ner_messages(list(batch.items()), labels, language, ex,
                                        errors=[error])
            try:
                comp = ask(msgs, mt, [sample], 1)[0]
            except (LLMCallError, BudgetExceeded) as exc:
                for o in outs:
                    o.error = str(exc)
                return
            n_tok = sum(map(len, toks))
            trunc, refusal = _truncated(comp, mt), _refused(comp)
            parsed = {} if refusal else parse_ner(comp.content, batch, labels,
                                                  label_map=label_map, reasoning=comp.reasoning,
                                                  salvage=bool(trunc))
            for j, o in enumerate(outs):
                o.charge(comp, len(toks[j]) / n_tok)
                res = parsed.get(j)
                if refusal:
                    o.error = refusal
                elif res is not None and res.tags is not None:
                    o.accept(res, [f"re-asked after: {error}"])
                else:
                    self._reask_ner(ask, o, toks[j], labels, language, ex, sample,
                                    trunc or (res.error if res else error),
                                    mt if trunc else None, label_map, first_attempt=2)
            return
        self._reask_ner(ask, outs[0], toks[0], labels, language, ex, sample, error,
                        truncated_at, label_map)

    def _reask_ner(self, ask, o: SampleOutcome, toks: list[str], labels, language, ex,
                   sample: int, error: str, truncated_at: int | None, label_map,
                   first_attempt: int = 1) -> None:
        mt = self._max_tokens(len(toks))
        for attempt in range(first_attempt, MAX_REASKS + 1):
            if truncated_at is not None:
                mt = min(self.config.max_tokens, max(mt, 2 * truncated_at))
            msgs = prompts.ner_messages([(0, toks)], labels, language, ex, errors=[error])
            try:
                comp = ask(msgs, mt, [sample], attempt)[0]
            except (LLMCallError, BudgetExceeded) as exc:
                o.error = str(exc)
                return
            o.charge(comp)
            if _refused(comp):
                o.error = _refused(comp)
                return
            trunc = _truncated(comp, mt)
            if trunc:
                error, truncated_at = trunc, mt
                continue
            res = parse_ner(comp.content, {0: toks}, labels, label_map=label_map,
                            reasoning=comp.reasoning)[0]
            if res.tags is not None:
                o.accept(res, [f"re-asked after: {error}"])
                o.span_probs, o.decision_probs = ner_reply_probs(comp.content, comp.logprobs,
                                                                 {0: res}).get(0, ({}, []))
                return
            error, truncated_at = res.error, None
        o.error = f"{error} (still failing after {MAX_REASKS} re-asks)"

    # ---- classification ---------------------------------------------------------------------
    def run_choices(self, texts: Sequence[str], choices: Sequence[str], multi_label: bool,
                    language: str, samples: list[int], project: str, fewshot: Callable,
                    progress: bool = False, scope: str = "") -> list[list[SampleOutcome]]:
        out = [[SampleOutcome() for _ in samples] for _ in texts]
        schema = prompts.cls_schema(choices, multi_label)
        run = _Run()

        def unit(i: int) -> None:
            ex = fewshot(texts[i])
            errors: list[str] = []
            todo = list(range(len(samples)))
            mt = self._max_tokens(4 * len(choices))
            for attempt in range(MAX_REASKS + 1):
                msgs = prompts.cls_messages(texts[i], choices, multi_label, language, ex, errors)
                try:
                    if run.fatal:
                        raise LLMFatalError(run.fatal)
                    comps = self.client.complete(msgs, schema=schema, max_tokens=mt,
                                                 samples=[samples[k] for k in todo],
                                                 project=project, attempt=attempt, scope=scope)
                except (LLMCallError, BudgetExceeded) as exc:
                    for k in todo:
                        out[i][k].error = run.stop(exc)
                    return
                failed = []
                for k, comp in zip(todo, comps):
                    o = out[i][k]
                    o.charge(comp)
                    if _refused(comp):
                        o.error = _refused(comp)
                        continue
                    res = parse_choices(comp.content, choices, multi_label,
                                        reasoning=comp.reasoning)
                    err = _truncated(comp, mt) or res.error
                    if err is None:
                        o.error = None
                        o.labels, o.repairs = res.labels, res.repairs + (
                            [f"re-asked after: {errors[0]}"] if errors else [])
                        o.choice_probs = choice_probs(comp.content, comp.logprobs, res.labels)
                    else:
                        failed.append(k)
                        o.error = err
                if not failed:
                    return
                if any(comps[todo.index(k)].finish_reason == "length" for k in failed):
                    mt = min(self.config.max_tokens, 2 * mt)
                todo, errors = failed, [out[i][failed[0]].error]
            for k in todo:
                out[i][k].error = f"{out[i][k].error} (still failing after {MAX_REASKS} re-asks)"

        self._pool(list(range(len(texts))), unit, progress, "LLM classify")
        return out
