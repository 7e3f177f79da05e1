"""Request scheduling: batches of sentences, samples, re-asks, a bounded thread pool.

One *unit* is a batch of up to ``LLM_SENTENCES_PER_REQUEST`` sentences (or one text to
classify) with all its samples, asked in one request (``n`` samples) when the server allows.
Each (sentence, sample) whose reply cannot be parsed or repaired is re-asked alone, with the
parser's error message in the prompt, at most ``MAX_REASKS`` times; a truncated reply
(``finish_reason == "length"``) is re-asked alone with twice the token allowance. What still
fails keeps its reason: nothing is dropped silently.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field

from tqdm import tqdm

from model.llm import prompts
from model.llm.client import Completion, LLMCallError, LLMClient
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

    def charge(self, comp: Completion, share: float = 1.0) -> None:
        self.latency_s += comp.latency_s
        self.tokens_in += round(comp.tokens_in * share)
        self.tokens_out += round(comp.tokens_out * share)
        self.cost_usd += comp.cost_usd * share
        self.cached = self.cached and comp.cached


def _truncated(comp: Completion, max_tokens: int) -> str | None:
    if comp.finish_reason == "length":
        return (f"reply truncated at max_tokens={max_tokens} (finish_reason=length); "
                "give the complete JSON, nothing else")
    return None


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
    def run_ner(self, sentences: Sequence[Sequence[str]], labels: Sequence[str], language: str,
                samples: list[int], project: str, fewshot: Callable, progress: bool = False
                ) -> list[list[SampleOutcome]]:
        out = [[SampleOutcome() for _ in samples] for _ in sentences]
        units, cur, cur_len = [], [], 0
        for i, toks in enumerate(sentences):
            if not toks:
                for o in out[i]:
                    o.tags = []
                continue
            if cur and (len(cur) >= self.config.sentences_per_request
                        or cur_len + len(toks) > MAX_BATCH_TOKENS):
                units.append(cur)
                cur, cur_len = [], 0
            cur.append(i)
            cur_len += len(toks)
        if cur:
            units.append(cur)

        def unit(batch: list[int]) -> None:
            toks = {j: list(sentences[i]) for j, i in enumerate(batch)}
            ex = fewshot(" ".join(t for ts in toks.values() for t in ts))
            n_tok = sum(len(t) for t in toks.values())
            mt = self._max_tokens(n_tok)
            msgs = prompts.ner_messages(list(toks.items()), labels, language, ex)
            try:
                comps = self.client.complete(msgs, schema=prompts.ner_schema(labels),
                                             max_tokens=mt, samples=samples, project=project)
            except (LLMCallError, BudgetExceeded) as exc:
                for i in batch:
                    for o in out[i]:
                        o.error = str(exc)
                return
            for k, comp in enumerate(comps):
                trunc = _truncated(comp, mt)
                parsed = {} if trunc else parse_ner(comp.content, toks, labels)
                probs = {} if trunc else ner_reply_probs(comp.content, comp.logprobs, parsed)
                for j, i in enumerate(batch):
                    o = out[i][k]
                    o.charge(comp, len(toks[j]) / n_tok)
                    res = parsed.get(j)
                    if res is not None and res.tags is not None:
                        o.tags, o.repairs = res.tags, res.repairs
                        o.span_probs, o.decision_probs = probs.get(j, ({}, []))
                    else:
                        self._reask_ner(o, toks[j], labels, language, ex, samples[k], project,
                                        trunc or res.error, mt if trunc else None)

        self._pool(units, unit, progress, "LLM NER")
        return out

    def _reask_ner(self, o: SampleOutcome, toks: list[str], labels, language, ex, sample: int,
                   project: str, error: str, truncated_at: int | None) -> None:
        mt = self._max_tokens(len(toks))
        for attempt in range(1, MAX_REASKS + 1):
            if truncated_at is not None:
                mt = min(self.config.max_tokens, max(mt, 2 * truncated_at))
            msgs = prompts.ner_messages([(0, toks)], labels, language, ex, errors=[error])
            try:
                comp = self.client.complete(msgs, schema=prompts.ner_schema(labels),
                                            max_tokens=mt, samples=[sample], project=project,
                                            attempt=attempt)[0]
            except (LLMCallError, BudgetExceeded) as exc:
                o.error = str(exc)
                return
            o.charge(comp)
            trunc = _truncated(comp, mt)
            if trunc:
                error, truncated_at = trunc, mt
                continue
            res = parse_ner(comp.content, {0: toks}, labels)[0]
            if res.tags is not None:
                o.tags, o.repairs = res.tags, [f"re-asked after: {error}"] + res.repairs
                o.span_probs, o.decision_probs = ner_reply_probs(comp.content, comp.logprobs,
                                                                 {0: res}).get(0, ({}, []))
                return
            error, truncated_at = res.error, None
        o.error = f"{error} (still failing after {MAX_REASKS} re-asks)"

    # ---- classification ---------------------------------------------------------------------
    def run_choices(self, texts: Sequence[str], choices: Sequence[str], multi_label: bool,
                    language: str, samples: list[int], project: str, fewshot: Callable,
                    progress: bool = False) -> list[list[SampleOutcome]]:
        out = [[SampleOutcome() for _ in samples] for _ in texts]
        schema = prompts.cls_schema(choices, multi_label)

        def unit(i: int) -> None:
            ex = fewshot(texts[i])
            errors: list[str] = []
            todo = list(range(len(samples)))
            mt = self._max_tokens(4 * len(choices))
            for attempt in range(MAX_REASKS + 1):
                msgs = prompts.cls_messages(texts[i], choices, multi_label, language, ex, errors)
                try:
                    comps = self.client.complete(msgs, schema=schema, max_tokens=mt,
                                                 samples=[samples[k] for k in todo],
                                                 project=project, attempt=attempt)
                except (LLMCallError, BudgetExceeded) as exc:
                    for k in todo:
                        out[i][k].error = str(exc)
                    return
                failed = []
                for k, comp in zip(todo, comps):
                    o = out[i][k]
                    o.charge(comp)
                    res = parse_choices(comp.content, choices, multi_label)
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
