"""The one place that talks to the LLM: openai SDK + tenacity retries + cache + ledger + budget.

The SDK's own retries are off (``max_retries=0``) so that one layer decides: 429 waits what the
server's ``Retry-After`` says (bounded), 5xx / timeouts / connection errors back off
exponentially, and after ``LLM_MAX_RETRIES`` retries the caller gets an ``LLMCallError`` with a
sentence it can show per item. Server capabilities are discovered, not assumed: a 400 that
names ``response_format``/``json_schema`` steps down json_schema -> json_object -> none (mode
``auto``), one that names ``logprobs`` (or ``seed``) stops sending it, one that asks for
``max_completion_tokens`` gets it, and a server that ignores ``n`` gets the remaining samples
one by one.
"""
from __future__ import annotations

import json
import random
import threading
import time
from dataclasses import dataclass

import openai
from tenacity import Retrying, retry_if_exception, stop_after_attempt

from model.llm.cache import ResponseCache, cache_key
from model.llm.config import LLMConfig
from model.llm.ledger import Ledger

MAX_RETRY_AFTER_S = 30.0
_FORMAT_LADDER = ("json_schema", "json_object", "none")


class LLMCallError(RuntimeError):
    """A request failed for good (after retries); the message is safe to show to users."""


@dataclass
class Completion:
    content: str | None
    finish_reason: str | None
    logprobs: list[tuple[str, float]] | None
    tokens_in: int
    tokens_out: int
    cost_usd: float
    cached: bool
    latency_s: float


def _retry_after(exc: BaseException) -> float | None:
    resp = getattr(exc, "response", None)
    headers = getattr(resp, "headers", None) or {}
    for name, scale in (("retry-after-ms", 1e-3), ("retry-after", 1.0)):
        try:
            if headers.get(name) is not None:
                return max(0.0, float(headers[name]) * scale)
        except (TypeError, ValueError):
            continue
    return None


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, (openai.RateLimitError, openai.APITimeoutError, openai.APIConnectionError)):
        return True
    return isinstance(exc, openai.APIStatusError) and exc.status_code >= 500


def _wait(state) -> float:
    exc = state.outcome.exception()
    ra = _retry_after(exc) if isinstance(exc, openai.RateLimitError) else None
    if ra is not None:
        return min(ra, MAX_RETRY_AFTER_S)
    return min(8.0, 0.25 * 2 ** (state.attempt_number - 1)) * random.uniform(0.8, 1.2)


def _describe(exc: BaseException, attempts: int) -> str:
    if isinstance(exc, openai.APITimeoutError):
        what = "timed out"
    elif isinstance(exc, openai.APIConnectionError):
        what = "could not connect"
    elif isinstance(exc, openai.APIStatusError):
        what = f"HTTP {exc.status_code}"
    else:
        what = type(exc).__name__
    return f"LLM request {what} after {attempts} attempt{'s' * (attempts > 1)}"


class LLMClient:
    def __init__(self, config: LLMConfig, cache: ResponseCache, ledger: Ledger) -> None:
        self.config, self.cache, self.ledger = config, cache, ledger
        self._client: openai.OpenAI | None = None
        self._lock = threading.Lock()
        self.format = "json_schema" if config.response_format == "auto" else config.response_format
        self.logprobs_ok = True
        self.n_ok = True
        self.seed_ok = True
        self.token_param = "max_tokens"  # o-series models want max_completion_tokens

    def _sdk(self) -> openai.OpenAI:
        with self._lock:
            if self._client is None:
                self._client = openai.OpenAI(base_url=self.config.base_url,
                                             api_key=self.config.api_key,
                                             timeout=self.config.timeout_s, max_retries=0)
            return self._client

    def _params(self, schema: dict | None, max_tokens: int) -> dict:
        fmt = self.format if schema is not None or self.format != "json_schema" else "json_object"
        p = {"temperature": self.config.temperature, "max_tokens": max_tokens, "format": fmt,
             "logprobs": self.logprobs_ok}
        if fmt == "json_schema":
            p["schema"] = schema
        return p

    def complete(self, messages: list[dict], *, schema: dict | None, max_tokens: int,
                 samples: list[int], project: str, attempt: int = 0) -> list[Completion]:
        """One ``Completion`` per sample index, from the cache where possible.

        ``attempt`` > 0 marks a re-ask: it gets its own seed and cache entry, so a second
        re-ask with the same error message is a new draw, not a cache hit of the first.
        Raises ``BudgetExceeded`` before a call that the budget does not allow, and
        ``LLMCallError`` when a call fails for good.
        """
        model = self.config.model
        out: dict[int, Completion] = {}
        for _ in range(len(samples) + 8):  # capability fallbacks change params, hence keys
            params = self._params(schema, max_tokens)
            if attempt:
                params["attempt"] = attempt
            keys = {s: cache_key(model, messages, params, s) for s in samples}
            for s in samples:
                if s in out:
                    continue
                hit = self.cache.get(keys[s])
                if hit is not None:
                    self.ledger.record(project, model, 0, 0, 0.0, cached=True)
                    out[s] = Completion(hit["content"], hit["finish_reason"], hit["logprobs"],
                                        0, 0, 0.0, True, 0.0)
            missing = [s for s in samples if s not in out]
            if not missing:
                break
            contiguous = missing == list(range(missing[0], missing[0] + len(missing)))
            n = len(missing) if self.n_ok and contiguous else 1
            try:
                got = self._call(messages, params, n=n, seed=missing[0] + 100_003 * attempt,
                                 project=project)
            except _Downgraded:
                continue
            if n > 1 and len(got) < n:
                self.n_ok = False
            for s, comp in zip(missing, got):
                self.cache.put(keys[s], {"content": comp.content,
                                         "finish_reason": comp.finish_reason,
                                         "logprobs": comp.logprobs})
                out[s] = comp
            if len(out) < len(samples):
                continue
            break
        missing = [s for s in samples if s not in out]
        if missing:  # only reachable if a server keeps changing its mind about capabilities
            raise LLMCallError("LLM server rejected every request format")
        return [out[s] for s in samples]

    def _call(self, messages: list[dict], params: dict, *, n: int, seed: int,
              project: str) -> list[Completion]:
        cfg = self.config
        est_in = sum(len(m["content"]) for m in messages) / 4
        self.ledger.check_budget(cfg.cost(int(est_in), 0))
        kwargs = {"model": cfg.model, "messages": messages, "temperature": params["temperature"],
                  self.token_param: params["max_tokens"]}
        if self.seed_ok:
            kwargs["seed"] = seed
        if n > 1:
            kwargs["n"] = n
        if params["logprobs"]:
            kwargs["logprobs"] = True
        if params["format"] == "json_schema":
            kwargs["response_format"] = {"type": "json_schema", "json_schema": params["schema"]}
        elif params["format"] == "json_object":
            kwargs["response_format"] = {"type": "json_object"}
        t0 = time.perf_counter()
        attempts = 0
        try:
            for attempt in Retrying(stop=stop_after_attempt(cfg.max_retries + 1), wait=_wait,
                                    retry=retry_if_exception(_transient), reraise=True):
                with attempt:
                    attempts += 1
                    # the raw JSON: building pydantic objects for every logprob token costs
                    # more CPU than the rest of the request (it capped throughput)
                    raw = self._sdk().chat.completions.with_raw_response.create(**kwargs)
                    resp = json.loads(raw.text)
        except openai.BadRequestError as exc:
            self._downgrade(exc, params)  # raises _Downgraded, or LLMCallError if nothing is left
        except openai.APIStatusError as exc:
            self.ledger.record(project, cfg.model, 0, 0, 0.0, ok=False)
            if exc.status_code in (401, 403):
                raise LLMCallError(f"LLM server refused the API key (HTTP {exc.status_code})") \
                    from None
            raise LLMCallError(_describe(exc, attempts)) from None
        except (openai.APITimeoutError, openai.APIConnectionError) as exc:
            self.ledger.record(project, cfg.model, 0, 0, 0.0, ok=False)
            raise LLMCallError(_describe(exc, attempts)) from None
        latency = time.perf_counter() - t0
        usage = resp.get("usage") or {}
        t_in = int(usage.get("prompt_tokens") or 0)
        t_out = int(usage.get("completion_tokens") or 0)
        cost = cfg.cost(t_in, t_out)
        self.ledger.record(project, cfg.model, t_in, t_out, cost)
        choices = sorted(resp.get("choices") or [], key=lambda c: c.get("index") or 0)
        if not choices:
            raise LLMCallError("LLM server answered without choices")
        texts = [(c.get("message") or {}).get("content") for c in choices]
        total_chars = sum(len(t or "") for t in texts) or 1
        comps = []
        for c, text in zip(choices, texts):
            share = len(text or "") / total_chars if len(choices) > 1 else 1.0
            lp = None
            if isinstance(c.get("logprobs"), dict) and c["logprobs"].get("content"):
                lp = [(t["token"], float(t["logprob"])) for t in c["logprobs"]["content"]]
            comps.append(Completion(text, c.get("finish_reason"), lp,
                                    round(t_in / len(choices)), round(t_out * share),
                                    cost / len(choices) if len(choices) > 1 else cost,
                                    False, latency))
        return comps

    def _downgrade(self, exc: openai.BadRequestError, params: dict) -> None:
        """Turn off what the 400 names. Threads race here: a capability that another thread
        already turned off since this request was built just means "retry"."""
        msg = str(getattr(exc, "message", "") or exc).lower()
        with self._lock:
            if "logprob" in msg and params["logprobs"]:
                self.logprobs_ok = False
                raise _Downgraded
            if "max_tokens" in msg and "max_completion_tokens" in msg:
                self.token_param = "max_completion_tokens"
                raise _Downgraded
            if "seed" in msg:
                self.seed_ok = False
                raise _Downgraded
            if any(w in msg for w in ("response_format", "json_schema", "schema", "json_object")) \
                    and self.config.response_format == "auto" and params["format"] != "none":
                if self.format == params["format"]:
                    self.format = _FORMAT_LADDER[_FORMAT_LADDER.index(self.format) + 1]
                raise _Downgraded
        raise LLMCallError(f"LLM server rejected the request (HTTP 400): {msg[:200]}") from None


class _Downgraded(Exception):
    """Internal: a capability was turned off; the caller retries with new params."""
