"""``LLMAnnotator``: pre-annotations (NER spans, choices) from any OpenAI-compatible model.

It turns task texts into token lists (``model.tokenize``, long texts cut into chunks at sentence
ends), asks the engine for n samples per chunk, votes, scores (see ``confidence``) and maps
token ranges back to exact character offsets of the task text. Per-item failures are returned
as ``LLMResult.error`` and never raised; only programming errors raise.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from model.llm.cache import ResponseCache
from model.llm.client import LLMClient
from model.llm.confidence import combine, majority_tags, tag_slots
from model.llm.config import ConfigError, LLMConfig
from model.llm.engine import Engine, SampleOutcome
from model.llm.fewshot import FewShotSelector, check_examples_file
from model.llm.ledger import BudgetExceeded, Ledger
from model.spec import TaskSpec
from model.tokenize import tokenize
from model.types import Example, Span, Token

__all__ = ["LLMAnnotator", "LLMResult", "TokenTagging", "BudgetExceeded", "LLMConfig"]
OFF_REASON = "LLM is off (LLM_API_KEY not set)"
MAX_CHUNK_TOKENS = 120
_SENT_END = frozenset(".!?።؟।")


@dataclass
class LLMResult:
    spans: list[Span] = field(default_factory=list)
    choices: list[tuple[str, float]] = field(default_factory=list)
    score: float | None = None
    error: str | None = None
    samples_ok: int = 0
    samples_failed: int = 0
    repaired: bool = False
    model: str = ""
    cached: bool = False
    repairs: list[str] = field(default_factory=list)
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    unknown_labels: dict[str, int] = field(default_factory=dict)  # read as O, by label
    cost_estimated: bool = False  # the server reported no usage: tokens/cost are estimates


@dataclass
class TokenTagging:
    """One sentence's R samples. ``errors`` holds "sample k: reason" for each failed sample;
    ``repaired`` and ``latency_s`` are aligned with ``samples``."""

    samples: list[list[str] | None]
    errors: list[str]
    repaired: list[bool]
    latency_s: list[float]
    tokens_in: int
    tokens_out: int
    cost_usd: float
    unknown_labels: dict[str, int] = field(default_factory=dict)


def _count(labels) -> dict[str, int]:
    out: dict[str, int] = {}
    for lab in labels:
        out[lab] = out.get(lab, 0) + 1
    return out


def _chunks(tokens: list[Token]) -> list[list[Token]]:
    out, cur = [], []
    for tok in tokens:
        cur.append(tok)
        if len(cur) >= MAX_CHUNK_TOKENS:
            cut = max((k + 1 for k, t in enumerate(cur[:-1]) if t.text in _SENT_END), default=0)
            cut = cut if cut >= MAX_CHUNK_TOKENS // 2 else len(cur)
            out.append(cur[:cut])
            cur = cur[cut:]
    if cur or not out:
        out.append(cur)
    return out


def _as_examples(examples) -> list[Example]:
    from model.tokenize import bio_to_spans, join_tokens
    out = []
    for e in examples:
        if isinstance(e, Example):
            out.append(e)
        else:  # (tokens, tags) pairs, e.g. from CoNLL
            text, toks = join_tokens(e[0])
            out.append(Example(text, bio_to_spans(toks, e[1])))
    return out


class LLMAnnotator:
    def __init__(self, config: LLMConfig, store_dir: Path) -> None:
        self.config = config
        self.store_dir = Path(store_dir)
        self.ledger = Ledger(self.store_dir / "llm_ledger.sqlite3", config.budget_usd)
        self.cache = ResponseCache(self.store_dir / "llm_cache.sqlite3")
        self.client = LLMClient(config, self.cache, self.ledger,
                                self.store_dir / "llm_capabilities.json")
        self.engine = Engine(self.client)
        if config.fewshot_file:  # a bad file is a configuration error: say so now, not per item
            try:
                check_examples_file(config.fewshot_file)
            except ValueError as exc:
                raise ConfigError(str(exc)) from None
        self.fewshot = FewShotSelector(config.fewshot_file)

    @property
    def enabled(self) -> bool:
        return self.config.enabled

    def status(self) -> dict:
        if not self.enabled:
            return {"enabled": False, "reason": OFF_REASON}
        return {"enabled": True, "model": self.config.model, "base_url": self.config.safe_url,
                "samples": self.config.samples, "response_format": self.client.format,
                "logprobs": self.client.logprobs_ok, "spent_usd": round(self.ledger.spent(), 6),
                "budget_usd": self.config.budget_usd or None}

    # ---- token-level API (agreement / selection experiments) ----------------------------------
    def tag_tokens(self, sentences: list[list[str]], labels: list[str], *, n_samples: int,
                   project: str = "default", language: str | None = None, examples=(),
                   sample_offset: int = 0, progress: bool = False,
                   label_map: dict | None = None) -> list[TokenTagging]:
        samples = list(range(sample_offset, sample_offset + n_samples))
        if not self.enabled:
            return [TokenTagging([None] * n_samples, [f"sample {s}: {OFF_REASON}" for s in samples],
                                 [False] * n_samples, [0.0] * n_samples, 0, 0, 0.0)
                    for _ in sentences]
        exs = _as_examples(examples)
        outs = self.engine.run_ner(sentences, list(labels), language or self.config.language,
                                   samples, project, self._ner_fewshot(list(labels), exs), progress,
                                   label_map=label_map)
        return [TokenTagging([o.tags for o in row],
                             [f"sample {s}: {o.error}" for s, o in zip(samples, row) if o.error],
                             [bool(o.repairs) for o in row], [o.latency_s for o in row],
                             sum(o.tokens_in for o in row), sum(o.tokens_out for o in row),
                             sum(o.cost_usd for o in row),
                             _count(lab for o in row for lab in o.unknown_labels))
                for row in outs]

    def project_cost(self, sentences: list[list[str]], labels: list[str], *,
                     language: str | None = None, examples=(), n_samples: int | None = None
                     ) -> dict:
        """The projected cost of tagging ``sentences`` (a dry run: no call is made)."""
        exs = _as_examples(examples)
        return self.engine.project_ner(sentences, list(labels), language or self.config.language,
                                       n_samples or self.config.samples,
                                       self._ner_fewshot(list(labels), exs))

    def project_texts(self, texts: list[str], spec: TaskSpec, *, language: str | None = None,
                      examples: Sequence[Example] = ()) -> dict:
        """The projected cost of ``annotate(texts, spec)`` (a dry run: no call is made)."""
        language = language or self.config.language
        out: dict = {}
        if spec.ner is not None:
            chunks = [[t.text for t in c] for text in texts for c in _chunks(tokenize(text))]
            out = self.project_cost(chunks, list(spec.ner.labels), language=language,
                                    examples=examples)
        if spec.choices is not None:
            c = spec.choices
            cls = self.engine.project_choices(
                texts, list(c.choices), c.multi_label, language, self.config.samples,
                lambda text: self.fewshot.cls(text, list(c.choices), examples))
            if not out:
                return cls
            for k in ("requests", "prompt_tokens_est", "completion_tokens_max"):
                out[k] += cls[k]
            for k in ("prompt_usd_est", "max_usd_est", "reserved_worst_usd"):
                out[k] = round(out[k] + cls[k], 4)
        return out

    def _ner_fewshot(self, labels, examples):
        return lambda text: self.fewshot.ner(text, labels, examples)

    # ---- task-level API (/predict, bulk pre-annotation) ---------------------------------------
    def annotate(self, texts: list[str], spec: TaskSpec, *, project: str = "default",
                 language: str | None = None, examples: Sequence[Example] = (),
                 progress: bool = False, label_map: dict | None = None,
                 scope: str = "") -> list[LLMResult]:
        """One result per text. ``label_map``: the project's own label synonyms (extra param);
        ``scope="predict"``: the spend also counts against ``LLM_PREDICT_BUDGET_USD``."""
        model = self.config.model
        if not self.enabled:
            return [LLMResult(error=OFF_REASON, model=model) for _ in texts]
        language = language or self.config.language
        n = self.config.samples
        samples = list(range(n))
        results = [LLMResult(model=model, cached=True) for _ in texts]
        ok = [[True] * n for _ in texts]
        if spec.ner is not None:
            labels = list(spec.ner.labels)
            toks = [tokenize(t) for t in texts]
            chunks = [(i, c) for i, ts in enumerate(toks) for c in _chunks(ts)]
            outs = self.engine.run_ner([[t.text for t in c] for _, c in chunks], labels, language,
                                       samples, project, self._ner_fewshot(labels, examples),
                                       progress, label_map=label_map, scope=scope)
            for (i, chunk), row in zip(chunks, outs):
                self._merge_ner(results[i], ok[i], chunk, row)
        if spec.choices is not None:
            c = spec.choices
            outs = self.engine.run_choices(
                texts, list(c.choices), c.multi_label, language, samples, project,
                lambda text: self.fewshot.cls(text, list(c.choices), examples), progress,
                scope=scope)
            for i, row in enumerate(outs):
                self._merge_choices(results[i], ok[i], row, c.multi_label)
        for r, oks in zip(results, ok):
            r.samples_ok = sum(oks)
            r.samples_failed = n - r.samples_ok
            r.repaired = bool(r.repairs)
            r.spans.sort(key=lambda s: (s.start, s.end))
        return results

    @staticmethod
    def _account(res: LLMResult, oks: list[bool], row: list[SampleOutcome]) -> list[int]:
        good = []
        for k, o in enumerate(row):
            res.tokens_in += o.tokens_in
            res.tokens_out += o.tokens_out
            res.cost_usd += o.cost_usd
            res.cached = res.cached and o.cached
            res.cost_estimated = res.cost_estimated or o.estimated
            res.repairs.extend(o.repairs)
            for lab in o.unknown_labels:
                res.unknown_labels[lab] = res.unknown_labels.get(lab, 0) + 1
            if o.error is None:
                good.append(k)
            else:
                oks[k] = False
        return good

    @staticmethod
    def _add_score(res: LLMResult, score: float | None) -> None:
        if score is not None:
            res.score = score if res.score is None else min(res.score, score)

    def _merge_ner(self, res: LLMResult, oks: list[bool], chunk: list[Token],
                   row: list[SampleOutcome]) -> None:
        good = self._account(res, oks, row)
        if not chunk:
            return
        if not good:
            reason = next(o.error for o in row if o.error)
            msg = (f"characters {chunk[0].start}..{chunk[-1].end} could not be annotated: "
                   f"{reason}")
            res.error = msg if res.error is None else f"{res.error}; {msg}"
            return
        tags, shares = majority_tags([row[k].tags for k in good])
        multi = len(good) > 1
        parts = [min(shares)] if multi else []
        for first, last, lab in tag_slots(tags):
            slot = (first, last, lab)
            votes = [k for k in good if slot in set(tag_slots(row[k].tags))]
            probs = [row[k].span_probs[slot] for k in votes if slot in row[k].span_probs]
            score = combine(len(votes) / len(good) if multi else None, probs)
            res.spans.append(Span(chunk[first].start, chunk[last].end, lab,
                                  None if score is None else round(score, 4)))
            if score is not None:
                parts.append(score)
        dec = [min(row[k].decision_probs) for k in good if row[k].decision_probs]
        if dec:
            parts.append(sum(dec) / len(dec))
        self._add_score(res, round(min(parts), 4) if parts else None)

    def _merge_choices(self, res: LLMResult, oks: list[bool], row: list[SampleOutcome],
                       multi_label: bool) -> None:
        good = self._account(res, oks, row)
        if not good:
            msg = f"classification failed: {next(o.error for o in row if o.error)}"
            res.error = msg if res.error is None else f"{res.error}; {msg}"
            return
        multi = len(good) > 1
        tally: dict[str, list[int]] = {}
        for k in good:
            for lab in row[k].labels:
                tally.setdefault(lab, []).append(k)
        scored = []
        for lab, ks in tally.items():
            vote = len(ks) / len(good)
            probs = [row[k].choice_probs[lab] for k in ks if lab in row[k].choice_probs]
            scored.append((lab, vote, combine(vote if multi else None, probs)))
        scored.sort(key=lambda x: (-x[1], -(x[2] or 0.0)))
        picked = [x for x in scored if x[1] > 0.5] if multi_label else scored[:1]
        picked = picked or scored[:1]
        res.choices = [(lab, round(s if s is not None else v, 4)) for lab, v, s in picked]
        scores = [s for _, _, s in picked if s is not None]
        self._add_score(res, round(min(scores), 4) if scores else None)
