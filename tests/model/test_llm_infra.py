"""Config, ledger, cache and the fake server itself (driven through the official openai SDK)."""
from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.parse
import urllib.request

import openai
import pytest

from model.llm.cache import ResponseCache, cache_key
from model.llm.config import ConfigError, LLMConfig
from model.llm.ledger import BudgetExceeded, Ledger
from model.llm.prompts import ner_messages, ner_schema
from devtools.fakellm import start_server

TOKS = ["Gwamnan", "jihar", "Kano", "Abba", "Yusuf", "."]
TAGS = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER", "O"]


@pytest.fixture(scope="module")
def server():
    handle = start_server({tuple(TOKS): TAGS, "Labarin wasanni": "sports"})
    yield handle
    handle.stop()


def test_config_defaults_parsing_and_secret_free_repr():
    cfg = LLMConfig.from_env({})
    assert not cfg.enabled and cfg.temperature == 0.1 and cfg.samples == 1
    assert cfg.response_format == "auto" and cfg.price_in_per_1k == 0.01
    cfg = LLMConfig.from_env({"LLM_API_KEY": "sk-very-secret-123", "LLM_SAMPLES": "3",
                              "LLM_BASE_URL": "http://x/v1/", "LLM_RESPONSE_FORMAT": "JSON_OBJECT"})
    assert cfg.enabled and cfg.samples == 3 and cfg.base_url == "http://x/v1"
    assert cfg.response_format == "json_object"
    for text in (repr(cfg), str(cfg), f"{cfg}"):
        assert "sk-very-secret" not in text and "api_key=<set>" in text
    with pytest.raises(ConfigError, match="LLM_SAMPLES"):
        LLMConfig.from_env({"LLM_SAMPLES": "three"})
    with pytest.raises(ConfigError, match="expected one of"):
        LLMConfig.from_env({"LLM_RESPONSE_FORMAT": "xml"})
    assert cfg.cost(1000, 1000) == pytest.approx(0.04)


def test_status_and_repr_never_show_credentials(tmp_path):
    from model.llm.annotator import LLMAnnotator
    cfg = LLMConfig.from_env({"LLM_API_KEY": "sk-abc-123",
                              "LLM_BASE_URL": "https://user:pw-secret@llm.example:8443/v1"})
    status = LLMAnnotator(cfg, tmp_path).status()
    assert status["enabled"] and status["base_url"] == "https://llm.example:8443/v1"
    for text in (json.dumps(status), repr(cfg)):
        assert "sk-abc" not in text and "pw-secret" not in text


def test_ledger_summary_budget_and_persistence(tmp_path):
    led = Ledger(tmp_path / "l.sqlite3", budget_usd=0.05)
    led.record("p1", "m1", 1000, 500, 0.025)
    led.record("p2", "m2", 1000, 0, 0.01)
    led.record("p1", "m1", 0, 0, 0.0, cached=True)
    s = led.summary()
    assert s["calls"] == 2 and s["cache_hits"] == 1 and s["tokens_in"] == 2000
    assert s["cost_usd"] == pytest.approx(0.035) and s["budget_left_usd"] == pytest.approx(0.015)
    assert s["by_project"]["p1"]["tokens_out"] == 500 and s["by_model"]["m2"]["calls"] == 1
    assert led.summary("p2")["cost_usd"] == pytest.approx(0.01)
    led.check_budget(0.01)
    with pytest.raises(BudgetExceeded, match="LLM_BUDGET_USD"):
        led.check_budget(0.02)
    led.close()
    assert Ledger(tmp_path / "l.sqlite3").summary()["calls"] == 2  # persisted


def test_cache_key_covers_model_messages_params_and_sample(tmp_path):
    m = [{"role": "user", "content": "x"}]
    k = cache_key("a", m, {"t": 0.1}, 0)
    assert len({k, cache_key("b", m, {"t": 0.1}, 0), cache_key("a", m, {"t": 0.2}, 0),
                cache_key("a", m, {"t": 0.1}, 1),
                cache_key("a", [{"role": "user", "content": "y"}], {"t": 0.1}, 0)}) == 5
    c = ResponseCache(tmp_path / "c.sqlite3")
    c.put(k, {"content": "é", "finish_reason": "stop", "logprobs": None})
    c.close()
    assert ResponseCache(tmp_path / "c.sqlite3").get(k)["content"] == "é"


def test_fake_server_speaks_openai(server):
    client = openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)
    msgs = ner_messages([(0, TOKS)], ["PER", "LOC"], "Hausa")
    resp = client.chat.completions.create(
        model="perfect", messages=msgs, n=3, seed=0, logprobs=True, max_tokens=500,
        response_format={"type": "json_schema", "json_schema": ner_schema(["PER", "LOC"])})
    assert len(resp.choices) == 3 and resp.usage.prompt_tokens > 100
    assert resp.usage.completion_tokens == sum(-(-len(c.message.content) // 4)
                                               for c in resp.choices)
    body = json.loads(resp.choices[0].message.content)
    assert [e["text"] for e in body["sentences"][0]["entities"]] == ["jihar Kano", "Abba Yusuf"]
    assert "".join(t.token for t in resp.choices[0].logprobs.content) == \
        resp.choices[0].message.content
    short = client.chat.completions.create(model="perfect", messages=msgs, max_tokens=5)
    assert short.choices[0].finish_reason == "length"
    assert [m.id for m in client.models.list()][:1]
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="perfect", messages=msgs, n=17)
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="no-such-persona", messages=msgs)
    with pytest.raises(openai.BadRequestError, match="logprobs"):
        client.chat.completions.create(model="no-logprobs", messages=msgs, logprobs=True)


def test_fake_server_is_bounded_and_loopback_only(server):
    # an oversized body is refused from its Content-Length, before it is read
    url = urllib.parse.urlsplit(server.base_url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    conn.putrequest("POST", url.path + "/chat/completions")
    conn.putheader("Authorization", "Bearer k")
    conn.putheader("Content-Length", "2000001")
    conn.endheaders(b"{}")
    assert conn.getresponse().status == 413
    conn.close()
    req = urllib.request.Request(server.base_url + "/chat/completions", data=b"{}", method="POST")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=10)
    assert err.value.code == 401
    with pytest.raises(ValueError, match="loopback"):
        start_server({}, host="0.0.0.0")


def test_fake_server_personas_are_deterministic_per_seed(server):
    client = openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)
    msgs = ner_messages([(0, TOKS)], ["PER", "LOC"], "Hausa")
    get = lambda model, seed: client.chat.completions.create(  # noqa: E731
        model=model, messages=msgs, seed=seed).choices[0].message.content
    assert get("noisy-0.5", 1) == get("noisy-0.5", 1)
    assert len({get("noisy-0.5", s) for s in range(6)}) > 1
    assert len({get("inconsistent", s) for s in range(3)}) == 3
    assert "```json" in get("prose", 0)
