"""Issue 20 end to end: the annotator against fake-server personas that answer with the habits of
real models and serving stacks (devtools/fakellm/personas.py), through the real openai SDK.

What users see: every sentence annotated, F1 vs gold equal to a clean run's, cost close to a
clean run's; errors that cannot be recovered are per-item reasons naming the endpoint, and they
stop a run early instead of being retried for every sentence; the budget is a hard cap."""
from __future__ import annotations

import socket
import time

import pytest

from devtools.fakellm import start_server
from devtools.fakellm.testing import HAU_DEV, NER_SPEC, gold_slice, make_annotator, span_f1

N = 16


@pytest.fixture(scope="module")
def data():
    if not HAU_DEV.exists():
        pytest.skip("../shared/data/masakhaner2 not present")
    return gold_slice(N)


@pytest.fixture(scope="module")
def server(data):
    handle = start_server(data[1])
    yield handle
    handle.stop()


def _run(server, tmp_path, persona, data, **env):
    ann = make_annotator(server.base_url, tmp_path, persona, **env)
    res = ann.annotate(data[2], NER_SPEC)
    spans = [{(s.start, s.end, s.label) for s in r.spans} for r in res]
    return ann, res, span_f1(spans, data[3]), ann.ledger.summary()["cost_usd"]


@pytest.fixture(scope="module")
def clean_cost(server, data, tmp_path_factory):
    _, res, f1, cost = _run(server, tmp_path_factory.mktemp("clean"), "perfect", data)
    assert f1 == 1.0 and all(r.error is None for r in res)
    return cost


@pytest.mark.parametrize("persona, max_cost", [
    ("reasoning", 1.6), ("reasoning-field", 1.6),  # the reasoning tokens are billed output
    ("python", 1.3), ("gpe", 1.3), ("folded", 1.3), ("no-id", 1.3), ("no-usage", 1.3),
    ("truncated", 1.5), ("gpe+folded+no-id", 1.3), ("reasoning+python", 1.6)])
def test_habit_is_fully_recovered_at_close_to_clean_cost(server, data, tmp_path, clean_cost,
                                                         persona, max_cost):
    ann, res, f1, cost = _run(server, tmp_path, persona, data)
    assert [r.error for r in res] == [None] * N
    assert f1 == 1.0
    assert cost <= max_cost * clean_cost, (cost, clean_cost)
    if persona == "no-usage":
        led = ann.ledger.summary()
        assert led["estimated_calls"] == led["calls"] and led["estimated_cost_usd"] == cost > 0
        assert all(r.cost_estimated for r in res)


def test_reasoning_draft_is_never_taken(server, data, tmp_path):
    _, res, f1, _ = _run(server, tmp_path, "reasoning", data, LLM_SENTENCES_PER_REQUEST=1)
    assert f1 == 1.0
    assert all(any("reasoning block removed" in x for x in r.repairs) for r in res
               if r.spans)


def test_thinking_switched_off_through_llm_extra_body(server, data, tmp_path, clean_cost):
    """Qwen3 served by vLLM or llama.cpp thinks unless the request asks it not to (its chat
    template's ``enable_thinking``): with LLM_EXTRA_BODY the reasoning tokens are not paid for."""
    off = '{"chat_template_kwargs": {"enable_thinking": false}}'
    _, res, f1, thinking = _run(server, tmp_path / "on", "reasoning", data)
    _, res_off, f1_off, cost_off = _run(server, tmp_path / "off", "reasoning", data,
                                        LLM_EXTRA_BODY=off)
    assert f1 == f1_off == 1.0 and [r.error for r in res_off] == [None] * N
    assert not any("reasoning block removed" in x for r in res_off for x in r.repairs)
    assert cost_off <= 1.05 * clean_cost < thinking
    # the switch is part of the cache key: the same prompt with thinking on is not served from it
    _, _, _, again = _run(server, tmp_path / "off", "reasoning", data)
    assert again > 0


@pytest.mark.parametrize("raw, needle", [
    ("{not json", "not valid JSON"), ("[1, 2]", "must be a JSON object"),
    ('{"response_format": {"type": "text"}, "max_tokens": 5}', "may not set max_tokens, response_format")])
def test_llm_extra_body_is_checked(raw, needle):
    from model.llm.config import ConfigError, LLMConfig

    with pytest.raises(ConfigError, match=needle):
        LLMConfig.from_env({"LLM_EXTRA_BODY": raw})
    cfg = LLMConfig.from_env({"LLM_EXTRA_BODY": ' {"reasoning_effort": "low"} '})
    assert cfg.extra_body_fields == {"reasoning_effort": "low"}


@pytest.mark.parametrize("persona, needle", [
    ("refusal", "the model refused: I'm sorry"), ("content-filter", "content_filter"),
    ("html", "not JSON (text/html")])
def test_refusals_and_html_bodies_are_per_item_errors(server, data, tmp_path, persona, needle):
    _, res, _, _ = _run(server, tmp_path, persona, data)
    assert all(r.error and needle in r.error for r in res)


def test_bad_key_stops_the_run_early_quoting_the_server(server, data, tmp_path):
    before = server.stats["requests"]
    _, res, _, _ = _run(server, tmp_path, "badkey", data, LLM_SENTENCES_PER_REQUEST=1)
    assert all("Incorrect API key provided" in r.error and "LLM_MODEL=badkey" in r.error
               and "LLM_BASE_URL=" in r.error for r in res)
    assert server.stats["requests"] - before <= 4  # the requests already in flight, no retries


def test_rate_limit_retries_have_their_own_budget(server, data, tmp_path):
    # three 429s per request with LLM_MAX_RETRIES=0: only the 429 budget lets it through
    t0 = time.perf_counter()
    _, res, f1, _ = _run(server, tmp_path, "ratelimit-3", data, LLM_MAX_RETRIES=0,
                         LLM_SENTENCES_PER_REQUEST=16)
    assert [r.error for r in res] == [None] * N and f1 == 1.0
    assert time.perf_counter() - t0 >= 3.0  # Retry-After: 1, three times
    _, res, _, _ = _run(server, tmp_path / "b", "ratelimit-4", data, LLM_MAX_RETRIES=0,
                        LLM_RATE_LIMIT_RETRIES=1, LLM_SENTENCES_PER_REQUEST=16)
    assert all("HTTP 429" in r.error for r in res)


def test_llama_cpp_server_formats_are_negotiated_and_remembered(server, data, tmp_path):
    ann, res, f1, _ = _run(server, tmp_path, "llamacpp", data)
    assert [r.error for r in res] == [None] * N and f1 == 1.0
    assert ann.client.format == "json_object_schema"  # json_object + schema: what it takes
    failed = ann.ledger.summary()["failed_calls"]
    assert failed == 1  # the one json_schema 500 that taught the format; requests built
    # before it was learnt are rebuilt, not sent (the real server's log showed four 500s)
    ann2 = make_annotator(server.base_url, tmp_path, "llamacpp")  # a new process, same store
    assert ann2.client.format == "json_object_schema"
    ann2.annotate(["Wani sabon rubutu a Kano ."], NER_SPEC)
    assert ann2.ledger.summary()["failed_calls"] == failed  # no format error again


def test_single_slot_server_is_not_flooded_into_timeouts(server, data, tmp_path):
    # llama_cpp.server generates one request at a time: with 16 requests queued, the last would
    # wait 16 x 0.5 s > the 4 s timeout; adaptive concurrency keeps the queue short (a reply
    # slower than half the timeout halves the limit)
    ann, res, f1, _ = _run(server, tmp_path, "llamacpp+slow-500", data, LLM_CONCURRENCY=16,
                           LLM_TIMEOUT_S=4, LLM_SENTENCES_PER_REQUEST=1, LLM_MAX_RETRIES=0,
                           LLM_RESPONSE_FORMAT="json_object_schema")
    assert [r.error for r in res] == [None] * N and f1 == 1.0
    assert ann.ledger.summary()["failed_calls"] == 0
    assert ann.client.limiter.limit <= 6


def test_fast_server_still_reaches_the_configured_concurrency(server, data, tmp_path):
    before = server.stats["max_in_flight"]
    ann, res, _, _ = _run(server, tmp_path, "slow-150", data, LLM_CONCURRENCY=4,
                          LLM_SENTENCES_PER_REQUEST=1)
    assert all(r.error is None for r in res)
    assert ann.client.limiter.limit == 4 and server.stats["max_in_flight"] >= min(before, 3)


@pytest.mark.parametrize("persona", ["perfect", "no-usage"])
def test_spend_never_exceeds_the_budget_over_ten_runs(server, data, tmp_path, persona):
    budget = 0.06
    for run in range(10):
        ann = make_annotator(server.base_url, tmp_path / f"{persona}-{run}", persona,
                             LLM_BUDGET_USD=budget, LLM_CONCURRENCY=4,
                             LLM_SENTENCES_PER_REQUEST=1 + run % 3)
        res = ann.annotate(data[2], NER_SPEC)
        spent = ann.ledger.summary()["cost_usd"]
        assert spent <= budget, (run, spent)
        assert any(r.error is None for r in res)
        assert all("LLM_BUDGET_USD" in r.error for r in res if r.error)


def test_dead_endpoint_trips_the_breaker_instead_of_retrying_every_sentence(data, tmp_path):
    hole = socket.socket()  # accepts connections (kernel backlog), never answers
    hole.bind(("127.0.0.1", 0))
    hole.listen(64)
    try:
        url = f"http://127.0.0.1:{hole.getsockname()[1]}/v1"
        t0 = time.perf_counter()
        ann = make_annotator(url, tmp_path, "perfect", LLM_TIMEOUT_S=0.3, LLM_MAX_RETRIES=4,
                             LLM_SENTENCES_PER_REQUEST=1, LLM_BREAKER_FAILURES=3)
        res = ann.annotate(data[2], NER_SPEC)
        wall = time.perf_counter() - t0
    finally:
        hole.close()
    assert all(r.error for r in res)
    assert sum("paused" in r.error for r in res) >= N - 4
    assert all(url in r.error for r in res)
    assert wall < 5  # without the breaker: 16 sentences x 5 attempts x 0.3 s and back-off
