"""LLM annotator settings, read once from the environment and passed down.

| Variable                    | Default                      | Meaning |
|-----------------------------|------------------------------|---------|
| `LLM_BASE_URL`              | `https://api.openai.com/v1`  | Any OpenAI-compatible endpoint (vLLM, Ollama, llama.cpp, OpenRouter ...). |
| `LLM_API_KEY`               | *(unset)*                    | Unset or empty: the annotator is off and makes no calls. Never logged. |
| `LLM_MODEL`                 | `gpt-4-turbo`                | Model name sent with every request; part of the cache key and the ledger. |
| `LLM_TEMPERATURE`           | `0.1`                        | The paper's setting: near-deterministic, yet samples can still differ. |
| `LLM_MAX_TOKENS`            | `2048`                       | Upper bound on completion tokens per request (the request asks for less, sized to the batch). |
| `LLM_SAMPLES`               | `1`                          | Samples per item for self-consistency (see below). |
| `LLM_CONCURRENCY`           | `4`                          | Requests in flight at once (thread pool). |
| `LLM_TIMEOUT_S`             | `60`                         | Per-request timeout, seconds. |
| `LLM_MAX_RETRIES`           | `4`                          | Retries per request on 5xx / timeout / connection error. |
| `LLM_RATE_LIMIT_RETRIES`    | `8`                          | Retries per request on 429, apart from the above (each waits the server's `Retry-After`, at most 30 s). |
| `LLM_BREAKER_FAILURES`      | `5`                          | Consecutive connection failures / timeouts after which no call is made for a while. |
| `LLM_BREAKER_COOLDOWN_S`    | `30`                         | How long the circuit breaker stays open before one trial call. |
| `LLM_MAX_CHARS_PER_TASK`    | `5000`                       | /predict: longer task texts use the local model (said in `detail`), never the LLM. |
| `LLM_PREDICT_BUDGET_USD`    | `1.0`                        | Spend of /predict-triggered LLM calls per rolling 24 h (0: only `LLM_BUDGET_USD` applies). |
| `LLM_PRICE_IN_PER_1K`       | `0.01`                       | USD per 1,000 prompt tokens (GPT-4-Turbo list price, as in the paper). |
| `LLM_PRICE_OUT_PER_1K`      | `0.03`                       | USD per 1,000 completion tokens. |
| `LLM_BUDGET_USD`            | `0` (no limit)               | Hard cap on the total spend (all projects, this ledger): each request reserves its worst case first. |
| `LLM_SENTENCES_PER_REQUEST` | `4`                          | Sentences batched in one NER request (instructions + few-shot paid once). |
| `LLM_LANGUAGE`              | `Hausa`                      | Language named in the prompt when the caller gives none. |
| `LLM_RESPONSE_FORMAT`       | `auto`                       | `auto` (json_schema, then json_object with the schema, json_object, none: stepped down when the server says a format is unsupported, remembered per endpoint and model), or force one. |
| `LLM_FEWSHOT_FILE`          | *(unset)*                    | CoNLL or JSONL file of static few-shot examples (never a test split). |
| `LLM_EXTRA_BODY`            | *(unset)*                    | JSON object merged into every request body (the SDK's `extra_body`), for server-specific switches: `{"chat_template_kwargs": {"enable_thinking": false}}` turns a hybrid reasoning model's thinking off (Qwen3 on vLLM / llama.cpp), `{"reasoning_effort": "low"}` for OpenAI reasoning models. Keys the annotator sets itself are refused. |

Why ``LLM_SAMPLES=1`` by default: a second and third sample cost 2-3x the completion tokens (the
prompt is paid once with ``n``), while GPT-4-Turbo agrees with itself across runs with Fleiss'
kappa 0.90-0.98 in the paper, so vote shares are almost always 1.0 and buy little ranking signal.
Token logprobs (requested on every call) give a graded confidence for free. Raise it to 3 for
servers without logprobs or for weaker open models, whose runs disagree far more often.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import urlsplit, urlunsplit

RESPONSE_FORMATS = ("auto", "json_schema", "json_object_schema", "json_object", "none")
# request fields the annotator sets and depends on (parsing, cost, caching): never overridden
RESERVED_BODY_KEYS = frozenset({"model", "messages", "n", "temperature", "max_tokens",
                                "max_completion_tokens", "response_format", "seed", "logprobs",
                                "top_logprobs", "stream", "stream_options"})


class ConfigError(ValueError):
    """An LLM_* variable has a value that cannot be used; the message names the variable."""


def _get(env: Mapping[str, str], name: str, default, cast):
    raw = env.get(name)
    if raw is None or str(raw).strip() == "":
        return default
    try:
        return cast(str(raw).strip())
    except ValueError as exc:
        raise ConfigError(f"{name}={raw!r} is not a valid {cast.__name__}") from exc


def _extra_body(raw: str | None) -> str:
    """LLM_EXTRA_BODY checked and canonicalised: a JSON object whose keys do not touch what the
    annotator sets itself (a response format or token limit set here would break parsing and the
    budget's worst case)."""
    if raw is None or not raw.strip():
        return ""
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise ConfigError(f"LLM_EXTRA_BODY is not valid JSON ({exc.msg} at character {exc.pos}); "
                          f'expected an object such as {{"chat_template_kwargs": '
                          f'{{"enable_thinking": false}}}}') from None
    if not isinstance(value, dict):
        raise ConfigError(f"LLM_EXTRA_BODY must be a JSON object, got {type(value).__name__}")
    clash = sorted(RESERVED_BODY_KEYS & value.keys())
    if clash:
        raise ConfigError(f"LLM_EXTRA_BODY may not set {', '.join(clash)}: the annotator sets "
                          f"those itself (see LLM_MODEL, LLM_TEMPERATURE, LLM_MAX_TOKENS, "
                          f"LLM_SAMPLES, LLM_RESPONSE_FORMAT)")
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


@dataclass(frozen=True)
class LLMConfig:
    base_url: str = "https://api.openai.com/v1"
    api_key: str = field(default="", repr=False)
    model: str = "gpt-4-turbo"
    temperature: float = 0.1
    max_tokens: int = 2048
    samples: int = 1
    concurrency: int = 4
    timeout_s: float = 60.0
    max_retries: int = 4
    rate_limit_retries: int = 8
    breaker_failures: int = 5
    breaker_cooldown_s: float = 30.0
    max_chars_per_task: int = 5000
    predict_budget_usd: float = 1.0
    price_in_per_1k: float = 0.01
    price_out_per_1k: float = 0.03
    budget_usd: float = 0.0
    sentences_per_request: int = 4
    language: str = "Hausa"
    response_format: str = "auto"
    fewshot_file: str | None = None
    extra_body: str = ""  # canonical JSON of LLM_EXTRA_BODY ("" = none): hashable, a cache-key part

    def __post_init__(self) -> None:
        if self.response_format not in RESPONSE_FORMATS:
            raise ConfigError(f"LLM_RESPONSE_FORMAT={self.response_format!r}: expected one of "
                              f"{', '.join(RESPONSE_FORMATS)}")
        for name in ("max_tokens", "samples", "concurrency", "sentences_per_request"):
            if getattr(self, name) < 1:
                raise ConfigError(f"LLM_{name.upper()} must be >= 1, got {getattr(self, name)}")
        if self.max_retries < 0 or self.timeout_s <= 0 or self.budget_usd < 0:
            raise ConfigError("LLM_MAX_RETRIES and LLM_BUDGET_USD must be >= 0, LLM_TIMEOUT_S > 0")
        if min(self.rate_limit_retries, self.breaker_cooldown_s, self.predict_budget_usd) < 0 \
                or self.breaker_failures < 1 or self.max_chars_per_task < 1:
            raise ConfigError("LLM_RATE_LIMIT_RETRIES, LLM_BREAKER_COOLDOWN_S and "
                              "LLM_PREDICT_BUDGET_USD must be >= 0, LLM_BREAKER_FAILURES and "
                              "LLM_MAX_CHARS_PER_TASK >= 1")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> LLMConfig:
        d = cls()
        return cls(
            base_url=_get(env, "LLM_BASE_URL", d.base_url, str).rstrip("/"),
            api_key=_get(env, "LLM_API_KEY", "", str),
            model=_get(env, "LLM_MODEL", d.model, str),
            temperature=_get(env, "LLM_TEMPERATURE", d.temperature, float),
            max_tokens=_get(env, "LLM_MAX_TOKENS", d.max_tokens, int),
            samples=_get(env, "LLM_SAMPLES", d.samples, int),
            concurrency=_get(env, "LLM_CONCURRENCY", d.concurrency, int),
            timeout_s=_get(env, "LLM_TIMEOUT_S", d.timeout_s, float),
            max_retries=_get(env, "LLM_MAX_RETRIES", d.max_retries, int),
            rate_limit_retries=_get(env, "LLM_RATE_LIMIT_RETRIES", d.rate_limit_retries, int),
            breaker_failures=_get(env, "LLM_BREAKER_FAILURES", d.breaker_failures, int),
            breaker_cooldown_s=_get(env, "LLM_BREAKER_COOLDOWN_S", d.breaker_cooldown_s, float),
            max_chars_per_task=_get(env, "LLM_MAX_CHARS_PER_TASK", d.max_chars_per_task, int),
            predict_budget_usd=_get(env, "LLM_PREDICT_BUDGET_USD", d.predict_budget_usd, float),
            price_in_per_1k=_get(env, "LLM_PRICE_IN_PER_1K", d.price_in_per_1k, float),
            price_out_per_1k=_get(env, "LLM_PRICE_OUT_PER_1K", d.price_out_per_1k, float),
            budget_usd=_get(env, "LLM_BUDGET_USD", d.budget_usd, float),
            sentences_per_request=_get(env, "LLM_SENTENCES_PER_REQUEST",
                                       d.sentences_per_request, int),
            language=_get(env, "LLM_LANGUAGE", d.language, str),
            response_format=_get(env, "LLM_RESPONSE_FORMAT", d.response_format, str).lower(),
            fewshot_file=_get(env, "LLM_FEWSHOT_FILE", None, str),
            extra_body=_extra_body(env.get("LLM_EXTRA_BODY")),
        )

    @property
    def extra_body_fields(self) -> dict[str, Any]:
        """``LLM_EXTRA_BODY`` as the dict the SDK merges into each request body."""
        return json.loads(self.extra_body) if self.extra_body else {}

    @property
    def enabled(self) -> bool:
        return bool(self.api_key)

    @property
    def safe_url(self) -> str:
        """``base_url`` without any ``user:password@`` part, for logs and /health."""
        url = urlsplit(self.base_url)
        if not url.hostname:
            return self.base_url
        netloc = url.hostname + (f":{url.port}" if url.port else "")
        return urlunsplit(url._replace(netloc=netloc))

    def where(self) -> str:
        """Names the endpoint and model for error messages (never the key)."""
        return f"LLM_BASE_URL={self.safe_url} LLM_MODEL={self.model}"

    def cost(self, tokens_in: int, tokens_out: int) -> float:
        return tokens_in / 1000 * self.price_in_per_1k + tokens_out / 1000 * self.price_out_per_1k

    def __repr__(self) -> str:  # the key never appears, not even masked in part
        parts = [f"{f.name}={getattr(self, f.name)!r}" for f in fields(self)
                 if f.name not in ("api_key", "base_url")]
        parts.insert(0, f"base_url={self.safe_url!r}")
        parts.append(f"api_key={'<set>' if self.api_key else '<unset>'}")
        return f"LLMConfig({', '.join(parts)})"

    __str__ = __repr__
