"""The one place that talks to the LLM: openai SDK + tenacity retries + cache + ledger + budget.

The SDK's own retries are off (``max_retries=0``) so that one layer decides:

- 429 waits what the server's ``Retry-After`` says (bounded) with its own retry budget
  (``LLM_RATE_LIMIT_RETRIES``); 5xx / timeouts / connection errors back off exponentially
  (``LLM_MAX_RETRIES``). What still fails is an ``LLMCallError`` with a sentence to show per item.
- Errors no retry can fix (401/403 key, 404 model or path, a 400 that is not about one request's
  size) are ``LLMFatalError``: the engine stops the run with that one message, which names
  ``LLM_BASE_URL`` and ``LLM_MODEL`` and quotes the server's own error text.
- A 200 whose body is not a chat completion (an HTML page from a web UI or proxy, an error
  object) or a refusal (``refusal``, ``finish_reason: content_filter``) is a per-item error.
- Capabilities are discovered, not assumed: any error (400, 422, 500 ...) whose text names
  ``response_format``/``json_schema`` steps down json_schema -> json_object with the schema (what
  llama_cpp.server takes) -> json_object -> none (mode ``auto``), one that names ``logprobs``
  (or ``seed``) stops sending it, one that asks for ``max_completion_tokens`` gets it, a server
  that ignores ``n`` gets the remaining samples one by one. What was learnt is kept per
  endpoint+model in ``llm_capabilities.json`` beside the cache, so the next run starts right.
- Hard budget: each request reserves its worst case in the ledger before it is sent (prompt
  bytes, an upper bound on byte-level BPE tokens, + ``max_tokens`` x ``n``), then settles with
  the reported usage or, when the server reports none, an estimate (~4 characters per token).
- ``throttle``: adaptive concurrency and a circuit breaker in front of every attempt.
"""
from __future__ import annotations

import json
import math
import os
import random
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import openai
from tenacity import Retrying, retry_if_exception

from model.llm.cache import ResponseCache, cache_key
from model.llm.config import LLMConfig
from model.llm.ledger import Ledger
from model.llm.throttle import AdaptiveConcurrency, CircuitBreaker, CircuitOpen

MAX_RETRY_AFTER_S = 30.0
_FORMAT_LADDER = ("json_schema", "json_object_schema", "json_object", "none")
_FORMAT_WORDS = ("response_format", "json_schema", "json_object")
_SIZE_WORDS = ("context length", "context window", "maximum context", "too long", "too many tokens")


class LLMCallError(RuntimeError):
    """A request failed for good (after retries); the message is safe to show to users."""


class LLMFatalError(LLMCallError):
    """No request to this endpoint can succeed as configured (key, model, URL): stop the run."""


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
    reasoning: str | None = None     # the server's separate reasoning_content, if any
    refusal: str | None = None       # why the model declined (refusal / content_filter)
    estimated: bool = False          # no usage in the reply: tokens and cost are estimates


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


def _error_text(body: object) -> str | None:
    """``{"error": {"message": ...}}``, ``{"error": "..."}`` or ``{"detail": ...}`` -> the text."""
    if not isinstance(body, dict):
        return None
    err = body.get("error", body)
    msg = (err.get("message") or err.get("detail")) if isinstance(err, dict) else err
    return None if msg is None else str(msg)


def server_message(exc: BaseException) -> str:
    """The server's own error text (the JSON error's message, else the body), short."""
    msg = _error_text(getattr(exc, "body", None)) or getattr(exc, "message", None) or str(exc)
    msg = " ".join(str(msg).split())
    return msg[:300] + ("..." if len(msg) > 300 else "")


def _about_format(exc: BaseException) -> bool:
    """An error that says a request parameter is unsupported (400/422 from most servers, 500
    from llama_cpp.server); never a 401/404/429, whatever their text says."""
    return isinstance(exc, openai.APIStatusError) and (
        exc.status_code in (400, 415, 422) or exc.status_code >= 500) and any(
        w in server_message(exc).lower() for w in _FORMAT_WORDS + ("logprob",))


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, (openai.RateLimitError, openai.APITimeoutError, openai.APIConnectionError)):
        return True
    return (isinstance(exc, openai.APIStatusError) and exc.status_code >= 500
            and not _about_format(exc))  # a 500 saying "format unsupported": step down now


def _wait(state) -> float:
    exc = state.outcome.exception()
    ra = _retry_after(exc) if isinstance(exc, openai.RateLimitError) else None
    if ra is not None:
        return min(ra, MAX_RETRY_AFTER_S)
    return min(8.0, 0.25 * 2 ** (state.attempt_number - 1)) * random.uniform(0.8, 1.2)


def _describe(exc: BaseException, attempts: int, where: str) -> str:
    if isinstance(exc, openai.APITimeoutError):
        what = "timed out"
    elif isinstance(exc, openai.APIConnectionError):
        what = "could not connect"
    elif isinstance(exc, openai.APIStatusError):
        what = f"HTTP {exc.status_code}: {server_message(exc)}"
    else:
        what = type(exc).__name__
    return f"LLM request {what} after {attempts} attempt{'s' * (attempts > 1)} ({where})"


class _Open(Exception):
    """Internal: the circuit breaker refused an attempt."""


class LLMClient:
    def __init__(self, config: LLMConfig, cache: ResponseCache, ledger: Ledger,
                 capabilities: Path | None = None) -> None:
        self.config, self.cache, self.ledger = config, cache, ledger
        self._client: openai.OpenAI | None = None
        self._lock = threading.Lock()
        self.format = "json_schema" if config.response_format == "auto" else config.response_format
        self.caps_generation = 0  # bumped whenever a capability is turned off
        self.logprobs_ok = True
        self.n_ok = True
        self.seed_ok = True
        self.token_param = "max_tokens"  # o-series models want max_completion_tokens
        self.limiter = AdaptiveConcurrency(config.concurrency)
        self.breaker = CircuitBreaker(config.breaker_failures, config.breaker_cooldown_s)
        self._caps_path = capabilities
        self._caps_key = f"{config.safe_url} {config.model}"
        self._load_capabilities()
        if config.enabled:  # ~0.7 s of CPU (client, lazy SDK resources): at start-up, not
            self._sdk().chat.completions.with_raw_response  # inside the first /predict burst

    # ---- capabilities remembered per endpoint + model ----------------------------------------
    def _load_capabilities(self) -> None:
        if self._caps_path is None or not self._caps_path.exists():
            return
        try:
            caps = json.loads(self._caps_path.read_text(encoding="utf-8")).get(self._caps_key)
        except (OSError, ValueError, AttributeError):
            return  # a damaged file only costs re-discovery
        if not isinstance(caps, dict):
            return
        if self.config.response_format == "auto" and caps.get("format") in _FORMAT_LADDER:
            self.format = caps["format"]
        self.logprobs_ok = bool(caps.get("logprobs", True))
        self.n_ok = bool(caps.get("n", True))
        self.seed_ok = bool(caps.get("seed", True))
        if caps.get("token_param") in ("max_tokens", "max_completion_tokens"):
            self.token_param = caps["token_param"]

    def _save_capabilities(self) -> None:
        """Atomic rewrite of this endpoint's entry (call with ``self._lock`` held), after a
        capability was turned off: requests built before that are not sent (``_attempt``)."""
        self.caps_generation += 1
        if self._caps_path is None:
            return
        try:
            allcaps = json.loads(self._caps_path.read_text(encoding="utf-8"))
            allcaps = allcaps if isinstance(allcaps, dict) else {}
        except (OSError, ValueError):
            allcaps = {}
        allcaps[self._caps_key] = {"format": self.format, "logprobs": self.logprobs_ok,
                                   "n": self.n_ok, "seed": self.seed_ok,
                                   "token_param": self.token_param}
        tmp = self._caps_path.with_name(f".{self._caps_path.name}.{os.getpid()}."
                                        f"{threading.get_ident()}.tmp")
        try:
            tmp.write_text(json.dumps(allcaps, indent=1), encoding="utf-8")
            os.replace(tmp, self._caps_path)
        except OSError:
            tmp.unlink(missing_ok=True)

    def _sdk(self) -> openai.OpenAI:
        with self._lock:
            if self._client is None:
                self._client = openai.OpenAI(base_url=self.config.base_url,
                                             api_key=self.config.api_key,
                                             timeout=self.config.timeout_s, max_retries=0)
            return self._client

    def _params(self, schema: dict | None, max_tokens: int) -> dict:
        fmt = self.format
        if schema is None and fmt in ("json_schema", "json_object_schema"):
            fmt = "json_object"
        p = {"temperature": self.config.temperature, "max_tokens": max_tokens, "format": fmt,
             "logprobs": self.logprobs_ok}
        if fmt in ("json_schema", "json_object_schema"):
            p["schema"] = schema
        if self.config.extra_body:  # server switches change answers: part of the cache key
            p["extra_body"] = self.config.extra_body
        return p

    def worst_cost(self, messages: list[dict], max_tokens: int, n: int = 1) -> float:
        """An upper bound on one request's cost: prompt bytes (byte-level BPE never makes more
        tokens than bytes) + a few template tokens per message, and every completion token."""
        t_in = sum(len((m.get("content") or "").encode("utf-8")) + 8 for m in messages)
        return self.config.cost(t_in, max_tokens * n)

    @staticmethod
    def estimate_tokens(messages: list[dict]) -> int:
        """The usual ~4 characters per token, as recorded when a server reports no usage."""
        return sum(math.ceil(len(m.get("content") or "") / 4) + 4 for m in messages)

    def complete(self, messages: list[dict], *, schema: dict | None, max_tokens: int,
                 samples: list[int], project: str, attempt: int = 0,
                 scope: str = "") -> list[Completion]:
        """One ``Completion`` per sample index, from the cache where possible.

        ``attempt`` > 0 marks a re-ask: it gets its own seed and cache entry, so a second
        re-ask with the same error message is a new draw, not a cache hit of the first.
        ``scope`` (``predict``) books the spend against that scope's budget as well.
        Raises ``BudgetExceeded`` before a call that the budget does not allow,
        ``LLMFatalError`` when no call can succeed and ``LLMCallError`` when this one failed.
        """
        model = self.config.model
        out: dict[int, Completion] = {}
        for _ in range(len(samples) + 8):  # capability fallbacks change params, hence keys
            generation = self.caps_generation  # before params: a change after it is seen
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
                                        0, 0, 0.0, True, 0.0, hit.get("reasoning"),
                                        hit.get("refusal"))
            missing = [s for s in samples if s not in out]
            if not missing:
                break
            contiguous = missing == list(range(missing[0], missing[0] + len(missing)))
            n = len(missing) if self.n_ok and contiguous else 1
            try:
                got = self._call(messages, params, n=n, seed=missing[0] + 100_003 * attempt,
                                 project=project, scope=scope, generation=generation)
            except _Downgraded:
                continue
            if n > 1 and len(got) < n:
                with self._lock:
                    self.n_ok = False
                    self._save_capabilities()
            for s, comp in zip(missing, got):
                if comp.refusal is None:  # a refusal may not repeat: never served from cache
                    self.cache.put(keys[s], {"content": comp.content,
                                             "finish_reason": comp.finish_reason,
                                             "logprobs": comp.logprobs,
                                             "reasoning": comp.reasoning})
                out[s] = comp
            if len(out) < len(samples):
                continue
            break
        missing = [s for s in samples if s not in out]
        if missing:  # only reachable if a server keeps changing its mind about capabilities
            raise LLMCallError(f"LLM server rejected every request format ({self.config.where()})")
        return [out[s] for s in samples]

    def _kwargs(self, messages: list[dict], params: dict, n: int, seed: int) -> dict:
        kwargs = {"model": self.config.model, "messages": messages,
                  "temperature": params["temperature"], self.token_param: params["max_tokens"]}
        if self.seed_ok:
            kwargs["seed"] = seed
        if n > 1:
            kwargs["n"] = n
        if params["logprobs"]:
            kwargs["logprobs"] = True
        if params["format"] == "json_schema":
            kwargs["response_format"] = {"type": "json_schema", "json_schema": params["schema"]}
        elif params["format"] == "json_object_schema":
            kwargs["response_format"] = {"type": "json_object",
                                         "schema": params["schema"]["schema"]}
        elif params["format"] == "json_object":
            kwargs["response_format"] = {"type": "json_object"}
        if self.config.extra_body:
            kwargs["extra_body"] = self.config.extra_body_fields
        return kwargs

    def paused(self) -> str | None:
        """Why no call would be made now (circuit breaker open), else None."""
        if not self.breaker.is_open:
            return None
        return (f"LLM calls paused: {self.config.breaker_failures} consecutive connection failures "
                f"or timeouts ({self.config.where()})")

    def _attempt(self, kwargs: dict, reserve, generation: int) -> tuple[str, str]:
        """One HTTP request through the breaker and the concurrency limit: (body, content type).
        ``reserve()`` books the budget once a slot is held (pending spend = requests in flight,
        not requests queued). A request built before a capability was turned off (``generation``)
        is not sent: with LLM_CONCURRENCY=4, llama_cpp.server answered the three queued
        ``json_schema`` requests with a 500 each after the first had taught the format."""
        try:
            self.breaker.check()
        except CircuitOpen as exc:
            raise _Open(exc.args[0]) from None
        self.limiter.acquire()
        overloaded, answered = False, False
        t0 = time.perf_counter()
        try:
            if generation != self.caps_generation:
                raise _Downgraded
            reserve()
            # the raw JSON: building pydantic objects for every logprob token costs more CPU
            # than the rest of the request (it capped throughput)
            raw = self._sdk().chat.completions.with_raw_response.create(**kwargs)
            body, ctype = raw.text, raw.headers.get("content-type", "")
        except (openai.APITimeoutError, openai.APIConnectionError):
            overloaded = True
            self.breaker.failure()
            raise
        except openai.RateLimitError:
            overloaded = True
            self.breaker.success()
            raise
        except openai.APIStatusError:
            self.breaker.success()  # the server is there and answering
            raise
        else:
            self.breaker.success()
            overloaded = time.perf_counter() - t0 > self.config.timeout_s / 2
            answered = True
            return body, ctype
        finally:
            self.limiter.release(overloaded, answered)

    def _call(self, messages: list[dict], params: dict, *, n: int, seed: int,
              project: str, generation: int, scope: str = "") -> list[Completion]:
        cfg = self.config
        kwargs = self._kwargs(messages, params, n, seed)
        worst = self.worst_cost(messages, params["max_tokens"], n)
        rows: list[int] = []

        def reserve() -> None:
            if not rows:  # once per request, kept across its retries
                rows.append(self.ledger.reserve(
                    project, cfg.model, worst, scope=scope,
                    scope_budget_usd=cfg.predict_budget_usd if scope == "predict" else 0))

        settled = False
        counts = {"rate": 0, "other": 0, "attempts": 0}

        def stop(state) -> bool:
            kind = "rate" if isinstance(state.outcome.exception(), openai.RateLimitError) \
                else "other"
            counts[kind] += 1
            limit = cfg.rate_limit_retries if kind == "rate" else cfg.max_retries
            return counts[kind] > limit or self.breaker.is_open

        t0 = time.perf_counter()
        try:
            try:
                for attempt in Retrying(stop=stop, wait=_wait, reraise=True,
                                        retry=retry_if_exception(_transient)):
                    counts["attempts"] += 1
                    with attempt:
                        body, ctype = self._attempt(kwargs, reserve, generation)
            except _Open as exc:
                raise LLMFatalError(
                    f"LLM calls paused for {exc.args[0]:.0f} s: {cfg.breaker_failures} "
                    f"consecutive connection failures or timeouts ({cfg.where()})") from None
            except openai.APIStatusError as exc:
                if _about_format(exc) or exc.status_code == 400:
                    self._downgrade(exc, params)  # raises _Downgraded or an error
                raise self._status_error(exc, counts["attempts"]) from None
            except (openai.APITimeoutError, openai.APIConnectionError) as exc:
                raise LLMCallError(_describe(exc, counts["attempts"], cfg.where())) from None
            latency = time.perf_counter() - t0
            comps = self._completions(body, ctype, messages, params, n, latency)
            cost = sum(c.cost_usd for c in comps)
            self.ledger.settle(rows[0], sum(c.tokens_in for c in comps),
                               sum(c.tokens_out for c in comps), cost,
                               estimated=comps[0].estimated)
            settled = True
            return comps
        finally:
            if not settled and rows:
                self.ledger.settle(rows[0], 0, 0, 0.0, ok=False)

    def _status_error(self, exc: openai.APIStatusError, attempts: int) -> LLMCallError:
        cfg, code, msg = self.config, exc.status_code, server_message(exc)
        if code in (401, 403):
            return LLMFatalError(f"LLM server refused the API key (HTTP {code}: {msg}); check "
                                 f"LLM_API_KEY for {cfg.where()}")
        if code == 404:
            return LLMFatalError(f"LLM server answered HTTP 404 ({msg}): check LLM_MODEL, and "
                                 f"that LLM_BASE_URL is the API's base URL (usually ending in "
                                 f"/v1); {cfg.where()}")
        if code == 400 and not any(w in msg.lower() for w in _SIZE_WORDS):
            return LLMFatalError(f"LLM server rejected the request (HTTP 400: {msg}); "
                                 f"{cfg.where()}")
        return LLMCallError(_describe(exc, attempts, cfg.where()))

    def _completions(self, body: str, ctype: str, messages: list[dict], params: dict, n: int,
                     latency: float) -> list[Completion]:
        cfg = self.config
        try:
            resp = json.loads(body)
        except ValueError:
            snippet = " ".join(body[:120].split())
            raise LLMCallError(
                f"LLM server answered HTTP 200 with a body that is not JSON "
                f"({ctype or 'no content type'}: {snippet!r}); is LLM_BASE_URL the API's base "
                f"URL (usually ending in /v1)? {cfg.where()}") from None
        if not isinstance(resp, dict) or not isinstance(resp.get("choices"), list) \
                or not resp["choices"]:
            err = _error_text(resp) if isinstance(resp, dict) and "error" in resp else None
            what = f"an error: {' '.join(err.split())[:300]}" if err else "no choices"
            raise LLMCallError(f"LLM server answered HTTP 200 with {what} ({cfg.where()})")
        usage = resp.get("usage") if isinstance(resp.get("usage"), dict) else {}
        choices = sorted((c for c in resp["choices"] if isinstance(c, dict)),
                         key=lambda c: c.get("index") or 0)
        msgs = [c.get("message") if isinstance(c.get("message"), dict) else {} for c in choices]
        texts = [m.get("content") if isinstance(m.get("content"), str) else None for m in msgs]
        estimated = not usage.get("prompt_tokens") and not usage.get("completion_tokens")
        if estimated:
            t_in = self.estimate_tokens(messages)
            t_out = min(sum(math.ceil(len(t or "") / 4) for t in texts),
                        params["max_tokens"] * max(1, len(choices)))
        else:
            t_in = int(usage.get("prompt_tokens") or 0)
            t_out = int(usage.get("completion_tokens") or 0)
        cost = cfg.cost(t_in, t_out)
        total_chars = sum(len(t or "") for t in texts) or 1
        comps = []
        for c, m, text in zip(choices, msgs, texts):
            share = len(text or "") / total_chars if len(choices) > 1 else 1.0
            lp = None
            if isinstance(c.get("logprobs"), dict) and c["logprobs"].get("content"):
                lp = [(t["token"], float(t["logprob"])) for t in c["logprobs"]["content"]]
            reasoning = m.get("reasoning_content") or m.get("reasoning")
            refusal = m.get("refusal") or (
                "the server's content filter stopped the reply (finish_reason=content_filter)"
                if c.get("finish_reason") == "content_filter" else None)
            comps.append(Completion(text, c.get("finish_reason"), lp,
                                    round(t_in / len(choices)), round(t_out * share),
                                    cost * share if len(choices) > 1 else cost,
                                    False, latency,
                                    reasoning if isinstance(reasoning, str) else None,
                                    str(refusal) if refusal else None, estimated))
        return comps

    def _downgrade(self, exc: openai.APIStatusError, params: dict) -> None:
        """Turn off what the error names. Threads race here: a capability that another thread
        already turned off since this request was built just means "retry"."""
        msg = server_message(exc).lower()
        with self._lock:
            if "logprob" in msg and params["logprobs"]:
                if self.logprobs_ok:
                    self.logprobs_ok = False
                    self._save_capabilities()
                raise _Downgraded  # turned off here or by another thread since
            if "max_tokens" in msg and "max_completion_tokens" in msg:
                if self.token_param == "max_tokens":
                    self.token_param = "max_completion_tokens"
                    self._save_capabilities()
                raise _Downgraded
            if "seed" in msg and exc.status_code == 400:
                if self.seed_ok:
                    self.seed_ok = False
                    self._save_capabilities()
                    raise _Downgraded
            if any(w in msg for w in _FORMAT_WORDS + ("schema",)) \
                    and self.config.response_format == "auto" and params["format"] != "none":
                if self.format == params["format"]:
                    self.format = _FORMAT_LADDER[_FORMAT_LADDER.index(self.format) + 1]
                    self._save_capabilities()
                raise _Downgraded
        # not about a capability (or nothing left to turn off): the caller reports the error


class _Downgraded(Exception):
    """Internal: a capability was turned off; the caller retries with new params."""
