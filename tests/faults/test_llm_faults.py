"""LLM provider faults behind /predict with PREDICT_SOURCE=both: timeouts, a hung connection, 429
with Retry-After, 500s, garbage and an unreachable host. Retries are bounded, each failed task
says why, the local model still answers well inside Label Studio's 100 s, and the cost ledger
matches, token for token, what the provider billed."""
from __future__ import annotations

import time

import pytest

from tests.conftest import NER_CONFIG
from tests.faults.conftest import seed_version
from tests.faults.harness import HAU_TRAIN, hausa

RETRIES = 1
# persona -> does the LLM answer in the end?
PERSONAS = {"perfect": True, "ratelimit-1": True, "ratelimit-9": False, "error500": False, "garbage": False,
            "timeout": False, "unreachable": False}


@pytest.fixture(scope="module")
def fake_llm():
    from devtools.fakellm.server import load_gold, start_server

    server = start_server(load_gold(conll=str(HAU_TRAIN)))
    yield server
    server.stop()


@pytest.mark.parametrize("persona", list(PERSONAS))
def test_llm_faults_fall_back_to_the_local_model(persona, fake_llm, make_settings, tiny_model):
    from backend.app import create_app
    from devtools.ls_process import free_port

    base = f"http://127.0.0.1:{free_port()}/v1" if persona == "unreachable" else fake_llm.base_url
    settings = make_settings(PREDICT_SOURCE="both", LLM_BASE_URL=base, LLM_API_KEY="sk-fault-test-key",
                             LLM_MODEL="perfect" if persona == "unreachable" else persona, LLM_TIMEOUT_S="2",
                             LLM_MAX_RETRIES=str(RETRIES))
    v1 = seed_version(settings.model_dir, 1, tiny_model)
    app = create_app(settings)
    client = app.test_client()
    texts = [t for t, _ in hausa(3)]
    before = fake_llm.stats
    t0 = time.perf_counter()
    r = client.post("/predict", json={"project": "1.1", "label_config": NER_CONFIG,
                                      "tasks": [{"id": i, "data": {"text": t}} for i, t in enumerate(texts)]})
    elapsed = time.perf_counter() - t0
    after = fake_llm.stats
    app.extensions["lal"]["queue"].close()
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert elapsed < 30, f"/predict took {elapsed:.1f}s"  # Label Studio waits 100 s
    assert len(body["results"]) == 3
    versions = {res["model_version"] for res in body["results"]}
    if PERSONAS[persona]:
        assert versions == {f"llm:{persona}"}, body
    else:
        assert versions == {v1}, body  # every task answered by the local model
        assert "LLM" in body["detail"], body
        assert "sk-fault-test-key" not in r.get_data(as_text=True)
    # bounded retries: each request is tried at most 1 + LLM_MAX_RETRIES times (+ re-asks of bad JSON)
    sent = after["requests"] - before["requests"]
    assert sent <= 2 * (1 + RETRIES) * 3, f"{sent} requests to the provider for 3 tasks"
    # the ledger equals what the provider billed, token for token
    ledger = client.get("/llm/ledger").get_json()
    assert ledger["tokens_in"] == after["prompt_tokens"] - before["prompt_tokens"]
    assert ledger["tokens_out"] == after["completion_tokens"] - before["completion_tokens"]
    cost = ledger["tokens_in"] / 1000 * 0.01 + ledger["tokens_out"] / 1000 * 0.03
    assert ledger["cost_usd"] == pytest.approx(cost, abs=1e-6)
    if not PERSONAS[persona] and persona != "garbage":
        assert ledger["tokens_in"] == 0 and ledger["cost_usd"] == 0
