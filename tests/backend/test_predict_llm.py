"""Every fake-LLM persona through /predict: one result per task or a clear reason, exact spans,
nothing silently lost, cache hits cost nothing, the budget stops calls and the local model serves."""
from __future__ import annotations

import pytest

from tests.conftest import NER_CONFIG, shared_path


@pytest.fixture(scope="module")
def gold():
    from devtools.fakellm.testing import gold_slice

    shared_path("data", "masakhaner2", "hau", "dev.txt")
    return gold_slice(6)


@pytest.fixture(scope="module")
def fake_llm(gold):
    from devtools.fakellm.server import start_server

    with start_server(gold[1]) as server:
        yield server


def _client(make_settings, fake_llm, model, **env):
    from backend.app import create_app

    env = {"PREDICT_SOURCE": "llm", **env}
    settings = make_settings(LLM_BASE_URL=fake_llm.base_url, LLM_API_KEY="sk-predict-test-0000", LLM_MODEL=model,
                             LLM_TIMEOUT_S="2", LLM_MAX_RETRIES="2", **env)
    app = create_app(settings)
    return app.test_client(), app


def _predict(client, texts):
    return client.post("/predict", json={"project": "11.1", "label_config": NER_CONFIG,
                                         "tasks": [{"id": i, "data": {"text": t}} for i, t in enumerate(texts)]})


@pytest.mark.parametrize("persona", ["perfect", "prose", "wrong-length", "unknown-tags", "truncated",
                                     "ratelimit", "no-schema", "no-logprobs"])
def test_recoverable_personas_give_exact_gold_spans(make_settings, fake_llm, gold, persona):
    _, _, texts, spans = gold
    client, _ = _client(make_settings, fake_llm, persona)
    body = _predict(client, texts).get_json()
    assert body["source"] == "llm", body
    assert len(body["results"]) == len(texts)
    for text, want, res in zip(texts, spans, body["results"]):
        assert res["model_version"] == f"llm:{persona}"
        got = {(r["value"]["start"], r["value"]["end"], r["value"]["labels"][0]) for r in res["result"]}
        if persona != "unknown-tags":  # unknown tags are repaired where unambiguous, reported otherwise
            assert got == want
        for r in res["result"]:
            assert text[r["value"]["start"]:r["value"]["end"]] == r["value"]["text"]
            assert 0.0 <= r["score"] <= 1.0


@pytest.mark.parametrize("persona, needle", [("garbage", ""), ("error500", ""), ("timeout", "")])
def test_broken_personas_are_reported_not_dropped(make_settings, fake_llm, gold, persona, needle):
    _, _, texts, _ = gold
    client, _ = _client(make_settings, fake_llm, persona)
    body = _predict(client, texts[:2]).get_json()
    # nothing from the LLM and no local model yet: an empty list and the reason, never partial lists
    assert body["results"] == [] and body["source"] == "none"
    assert "LLM" in body["detail"]


def test_noisy_and_inconsistent_personas_still_answer_every_task(make_settings, fake_llm, gold):
    _, _, texts, _ = gold
    for persona in ("noisy-0.14", "inconsistent"):
        client, _ = _client(make_settings, fake_llm, persona, LLM_SAMPLES="3")
        body = _predict(client, texts).get_json()
        assert len(body["results"]) == len(texts) and body["source"] == "llm"


def test_cache_hit_costs_nothing_and_ledger_is_exact(make_settings, fake_llm, gold):
    _, _, texts, _ = gold
    client, _ = _client(make_settings, fake_llm, "perfect")
    before = fake_llm.stats
    _predict(client, texts)
    mid = fake_llm.stats
    first = client.get("/llm/ledger").get_json()
    # the ledger counts exactly the tokens the server reported
    assert first["tokens_in"] == mid["prompt_tokens"] - before["prompt_tokens"] > 0
    assert first["tokens_out"] == mid["completion_tokens"] - before["completion_tokens"] > 0
    _predict(client, texts)
    second = client.get("/llm/ledger").get_json()
    assert fake_llm.stats["requests"] == mid["requests"]  # served from the cache: no new call
    assert (second["tokens_in"], second["tokens_out"], second["cost_usd"]) == \
        (first["tokens_in"], first["tokens_out"], first["cost_usd"])
    assert second["cache_hits"] > first["cache_hits"]


def test_budget_stops_calls_and_local_model_keeps_serving(make_settings, fake_llm, gold):
    from backend.label_config import parse_label_config
    from model.local import LocalModel
    from model.types import Example, Span

    _, _, texts, spans = gold
    client, app = _client(make_settings, fake_llm, "perfect", LLM_BUDGET_USD="0.0000001", PREDICT_SOURCE="both")
    assert client.post("/setup", json={"project": "11.1", "schema": NER_CONFIG}).status_code == 200
    spec = parse_label_config(NER_CONFIG)
    model = LocalModel(spec, ner_params={"max_epochs": 3}).fit(
        [Example(t, [Span(*s) for s in sp]) for t, sp in zip(texts, spans)])
    app.extensions["lal"]["backend"].store.save_version(11, lambda d: model.save(d), {})
    _predict(client, texts[:1])  # spends past the tiny budget
    calls = fake_llm.stats["requests"]
    body = _predict(client, texts[1:3]).get_json()
    assert len(body["results"]) == 2
    assert all(r["model_version"] == "v1" for r in body["results"])  # the local model answered
    assert "budget" in body.get("detail", "").lower()
    assert fake_llm.stats["requests"] == calls  # no call made past the budget
