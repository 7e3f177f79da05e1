"""/predict stays safe with the LLM on (issue 20): long task texts never reach the LLM, its spend
has its own default budget, labels outside the project are reported, and the circuit breaker
turns a dead endpoint into an immediate local-model answer."""
from __future__ import annotations

import time

import pytest

from tests.conftest import NER_CONFIG, shared_path


@pytest.fixture(scope="module")
def gold():
    from devtools.fakellm.testing import gold_slice

    shared_path("data", "masakhaner2", "hau", "dev.txt")
    return gold_slice(4)


@pytest.fixture(scope="module")
def fake_llm(gold):
    from devtools.fakellm.server import start_server

    with start_server(gold[1]) as server:
        yield server


def _client(make_settings, base_url, model, **env):
    from backend.app import create_app

    env = {"LLM_TIMEOUT_S": "2", "LLM_MAX_RETRIES": "1", **env}
    settings = make_settings(PREDICT_SOURCE="llm", LLM_BASE_URL=base_url, LLM_API_KEY="sk-safety-test-0000",
                             LLM_MODEL=model, **env)
    return create_app(settings).test_client()


def _predict(client, texts):
    return client.post("/predict", json={"project": "12.1", "label_config": NER_CONFIG,
                                         "tasks": [{"id": i, "data": {"text": t}} for i, t in enumerate(texts)]})


def test_a_long_task_never_reaches_the_llm_and_detail_says_why(make_settings, fake_llm, gold):
    texts = gold[2]
    client = _client(make_settings, fake_llm.base_url, "perfect", LLM_MAX_CHARS_PER_TASK="3000")
    before = fake_llm.stats["requests"]
    t0 = time.perf_counter()
    body = _predict(client, [texts[0] * 30_000][:1]).get_json()  # ~4 MB: 100s of LLM calls uncapped
    assert time.perf_counter() - t0 < 10
    assert fake_llm.stats["requests"] == before
    assert body["results"] == [] and "LLM_MAX_CHARS_PER_TASK=3000" in body["detail"]
    # a mix: the short tasks still get LLM predictions, the long one is said to be left out
    body = _predict(client, [texts[0], "x " * 2000, texts[1]]).get_json()
    assert body["results"] == [] and "1 task(s) longer than LLM_MAX_CHARS_PER_TASK" in body["detail"]
    assert fake_llm.stats["requests"] > before


def test_predict_calls_have_their_own_budget(make_settings, fake_llm, gold):
    texts = gold[2]
    client = _client(make_settings, fake_llm.base_url, "perfect", LLM_PREDICT_BUDGET_USD="0.04",
                     LLM_SENTENCES_PER_REQUEST="1")
    details = []
    for t in texts * 3:
        body = _predict(client, [t + " ."]).get_json()
        details.append(body.get("detail", ""))
    assert any("budget for predict calls exceeded" in d for d in details)
    assert client.get("/llm/ledger").get_json()["cost_usd"] <= 0.04


def test_unknown_labels_are_reported_in_detail(make_settings, fake_llm, gold):
    client = _client(make_settings, fake_llm.base_url, "unknown-tags")
    body = _predict(client, gold[2][:2]).get_json()
    assert body["source"] == "llm" and "read as O: EVENT" in body["detail"]


def test_dead_endpoint_trips_the_breaker_and_predict_answers_at_once(make_settings, gold):
    from devtools.ls_process import free_port

    client = _client(make_settings, f"http://127.0.0.1:{free_port()}/v1", "perfect", LLM_BREAKER_FAILURES="2",
                     LLM_MAX_RETRIES="4")
    first = _predict(client, gold[2]).get_json()
    assert first["results"] == [] and ("could not connect" in first["detail"] or "paused" in first["detail"])
    t0 = time.perf_counter()
    again = _predict(client, gold[2]).get_json()
    assert time.perf_counter() - t0 < 0.5
    assert "LLM calls paused" in again["detail"] and "LLM_BASE_URL=http://127.0.0.1:" in again["detail"]
