"""Bad input gets a 4xx whose message names the problem; nothing crashes, nothing is stored."""
from __future__ import annotations

import base64

import pytest

from tests.conftest import NER_CONFIG


def _predict(client, **over):
    body = {"project": "3.17", "label_config": NER_CONFIG, "tasks": [{"id": 1, "data": {"text": "Musa ya je Kano"}}]}
    body.update(over)
    return client.post("/predict", json=body)


@pytest.mark.parametrize("config, needle", [
    ("<View><Text name='text' value='$text'/></View>", "no <Labels> or <Choices>"),
    ("<View><Labels name='l' toName='nowhere'><Label value='A'/></Labels><Text name='t' value='$t'/></View>",
     'toName="nowhere"'),
    ("<View><Labels name='l' toName='t'>", "not well-formed"),
    ('<?xml version="1.0"?><!DOCTYPE v [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><View>&b;</View>', "DTD"),
    ("<View>" + "<View>" * 50 + "</View>" * 51, "nests deeper"),
    ("<View><Labels name='l' toName='t'>" + "".join(f"<Label value='L{i}'/>" for i in range(10_000))
     + "</Labels><Text name='t' value='$t'/></View>", "10000 labels"),
])
def test_bad_label_configs(app_client, config, needle):
    client, _ = app_client
    resp = _predict(client, label_config=config)
    assert resp.status_code == 400
    assert needle in resp.get_json()["error"]


def test_non_json_and_wrong_shapes(app_client):
    client, _ = app_client
    r = client.post("/predict", data="{not json", content_type="application/json")
    assert r.status_code == 400 and "not valid JSON" in r.get_json()["error"]
    r = client.post("/predict", json=[1, 2])
    assert r.status_code == 400 and "JSON object" in r.get_json()["error"]
    r = client.post("/predict", json={"project": "1", "tasks": "nope"})
    assert r.status_code == 400 and "tasks" in r.get_json()["error"]
    r = _predict(client, tasks=[{"id": 1, "data": {"text": 42}}])
    assert r.status_code == 400 and "data.text must be a string" in r.get_json()["error"]
    r = _predict(client, project="abc")
    assert r.status_code == 400 and "not a Label Studio project id" in r.get_json()["error"]
    r = client.post("/webhook", json={"action": "ANNOTATION_CREATED"})
    assert r.status_code == 400 and "no project" in r.get_json()["error"]
    r = client.post("/setup", json={"schema": NER_CONFIG})
    assert r.status_code == 400 and "project" in r.get_json()["error"]


def test_unknown_project_and_job(app_client):
    client, _ = app_client
    r = client.post("/webhook", json={"action": "ANNOTATION_CREATED", "project": 99, "annotation": {"id": 1}})
    assert r.status_code == 404 and "unknown to this backend" in r.get_json()["error"]
    r = client.post("/predict", json={"project": "99.1", "tasks": [{"id": 1, "data": {"text": "x"}}]})
    assert r.status_code == 404 and "unknown to this backend" in r.get_json()["error"]
    assert client.get("/jobs/doesnotexist").status_code == 404
    assert client.get("/nope").status_code == 404
    r = client.post("/versions/99/pin", json={"version": "v1"})
    assert r.status_code == 404 and "unknown to this backend" in r.get_json()["error"]
    assert client.post("/setup", json={"project": "99.1", "schema": NER_CONFIG}).status_code == 200
    r = client.post("/versions/99/pin", json={"version": "v1"})
    assert r.status_code == 404 and "no version v1" in r.get_json()["error"]


def test_huge_payload_is_refused(make_settings):
    from backend.app import create_app

    app = create_app(make_settings(MAX_REQUEST_MB="0.01"))
    r = app.test_client().post("/predict", json={"project": "1", "tasks": [{"data": {"text": "x" * 20000}}]})
    assert r.status_code == 413


def test_basic_auth_and_webhook_secret(make_settings):
    from backend.app import create_app

    settings = make_settings(BASIC_AUTH_USER="ls", BASIC_AUTH_PASS="pw-123456", WEBHOOK_SECRET="hook-s3cret-abc-0123")
    client = create_app(settings).test_client()
    good = {"Authorization": "Basic " + base64.b64encode(b"ls:pw-123456").decode()}
    bad = {"Authorization": "Basic " + base64.b64encode(b"ls:wrong").decode()}
    assert client.get("/health").status_code == 200  # health stays open for probes
    body = {"project": "5.1", "schema": NER_CONFIG}
    assert client.post("/setup", json=body).status_code == 401
    assert client.post("/setup", json=body, headers=bad).status_code == 401
    r = client.post("/setup", json=body, headers=good)
    assert r.status_code == 200
    event = {"action": "ANNOTATION_CREATED", "project": {"id": 5, "label_config": NER_CONFIG}, "annotation": {"id": 1}}
    r = client.post("/webhook", json=event)
    assert r.status_code == 401
    assert "pw-123456" not in r.get_data(as_text=True) and "hook-s3cret-abc" not in r.get_data(as_text=True)
    # Label Studio's own events: no credentials, but under the registered secret prefix
    assert client.post("/hook-s3cret-abc-0123/webhook", json=event).status_code == 201
    assert client.post("/hook-s3cret-abc-0124/webhook", json=event).status_code == 401
    # START_TRAINING carries basic auth
    assert client.post("/webhook", json={**event, "action": "START_TRAINING"}, headers=good).status_code == 201
    # the prefix also serves Label Studio's other calls (it builds every URL from the registered one)
    assert client.post("/hook-s3cret-abc-0123/setup", json=body, headers=good).status_code == 200


def test_per_project_options_from_extra_params(app_client):
    client, app = app_client
    r = client.post("/setup", json={"project": "8.1", "schema": NER_CONFIG,
                                    "extra_params": {"query_strategy": "nonsense"}})
    assert r.status_code == 400 and "least_confidence" in r.get_json()["error"]
    # BALD reads MC-dropout samples: refused for the default CRF (no dropout) before any training
    # could fail on it, accepted with the tagger; nothing of the refused setup is kept
    r = client.post("/setup", json={"project": "8.1", "schema": NER_CONFIG,
                                    "extra_params": '{"language": "Hausa", "query_strategy": "bald"}'})
    assert r.status_code == 400
    assert "MC-dropout" in r.get_json()["error"] and "'tagger'" in r.get_json()["error"]
    backend = app.extensions["lal"]["backend"]
    assert backend.project_option(8, "query_strategy") is None
    r = client.post("/setup", json={"project": "8.1", "schema": NER_CONFIG, "extra_params":
                                    '{"language": "Hausa", "query_strategy": "diverse:bald", "ner_model": "crf"}'})
    assert r.status_code == 400  # the diversity wrapper needs what its base needs
    r = client.post("/setup", json={"project": "8.1", "schema": NER_CONFIG, "extra_params":
                                    '{"language": "Hausa", "query_strategy": "bald", "ner_model": "tagger"}'})
    assert r.status_code == 200
    assert backend.project_option(8, "language") == "Hausa"
    assert backend.project_option(8, "query_strategy") == "bald"


def test_bald_with_the_crf_is_refused_at_start_up(make_settings):
    with pytest.raises(ValueError, match="QUERY_STRATEGY=bald needs MC-dropout.*NER_MODEL=tagger"):
        make_settings(QUERY_STRATEGY="bald")
    with pytest.raises(ValueError, match="QUERY_STRATEGY=diverse:bald needs MC-dropout"):
        make_settings(QUERY_STRATEGY="diverse:bald", NER_MODEL="crf")
    with pytest.raises(ValueError, match="QUERY_STRATEGY: unknown strategy 'nonsense'"):
        make_settings(QUERY_STRATEGY="nonsense")
    assert make_settings(QUERY_STRATEGY="bald", NER_MODEL="tagger").query_strategy == "bald"


def test_selection_winner_file_configures_the_llm(make_settings, tmp_path):
    from backend.ml import llm_env

    winner = tmp_path / "llm.env"
    winner.write_text("# chosen\nLLM_BASE_URL=http://127.0.0.1:1/v1\nLLM_MODEL=perfect\nLLM_API_KEY_ENV=MY_KEY\n")
    env = llm_env(make_settings(LLM_ENV_FILE=str(winner), MY_KEY="sk-from-var-1234", LLM_MODEL="other"))
    assert env["LLM_MODEL"] == "perfect" and env["LLM_API_KEY"] == "sk-from-var-1234"
    assert llm_env(make_settings(LLM_MODEL="other"))["LLM_MODEL"] == "other"  # no file: env as is
