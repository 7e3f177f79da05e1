"""Findings of the security and fault probe (issue 19) at the Flask level: each was a 500, an
open door or a silent misreading before the fix."""
from __future__ import annotations

import base64
import json
import subprocess
import sys

import pytest

from tests.conftest import NER_CONFIG, NEWS_CONFIG, REPO

LOOSE_IDS = ["²", "①", "١٢", "𝟏𝟐", "１", 1.5, True, "7.abc", "7\n", " 7", "7.", ".7", "0", -3, 0, 2147483648,
             "2147483648", "9" * 5000, "7." + "1" * 5000, None, [7], {"id": "²"}]
GOOD_IDS = [(7, 7), ("7", 7), ("7.1700000000", 7), ({"id": "8.17"}, 8), (2147483647, 2147483647)]


@pytest.mark.parametrize("value", LOOSE_IDS, ids=[repr(v)[:20] for v in LOOSE_IDS])
def test_loose_project_ids_are_refused_and_create_nothing(app_client, value):
    client, app = app_client
    store = app.extensions["lal"]["backend"].store
    before = store.projects()
    for path, body in [("/setup", {"project": value, "schema": NER_CONFIG}),
                       ("/predict", {"project": value, "label_config": NER_CONFIG, "tasks": []}),
                       ("/webhook", {"action": "PROJECT_UPDATED", "project": {"id": value, "label_config": NER_CONFIG}}),
                       ("/train", {"project": value}), ("/jobs", {"kind": "train", "project": value})]:
        r = client.post(path, json=body)
        assert r.status_code == 400, (path, r.status_code, r.get_json())
        assert "project" in r.get_json()["error"] and len(r.get_data()) < 1000
    assert store.projects() == before


@pytest.mark.parametrize("value, pid", GOOD_IDS)
def test_label_studio_id_spellings_are_accepted(app_client, value, pid):
    client, app = app_client
    assert client.post("/setup", json={"project": value, "schema": NER_CONFIG}).status_code == 200
    assert app.extensions["lal"]["backend"].store.project(pid)["label_config"] == NER_CONFIG


@pytest.mark.parametrize("path", ["/versions/²/pin", "/versions/١٢/pin", "/versions/" + "1" * 5000 + "/pin",
                                  "/versions/1.5.5/unpin", "/agreement/①/plot.png"])
def test_loose_ids_in_paths(app_client, path):
    client, _ = app_client
    r = client.post(path, json={"version": "v1"}) if "versions" in path else client.get(path)
    assert r.status_code == 400 and len(r.get_data()) < 1000


@pytest.mark.parametrize("version", ["v" + "1" * 5000, "v١", "v𝟏", "v1\n", "V1", "1", "v", "v1234567890", 3, None,
                                     ["v1"], "../v1"])
def test_loose_versions_are_refused(app_client, version):
    client, _ = app_client
    assert client.post("/setup", json={"project": 3, "schema": NER_CONFIG}).status_code == 200
    r = client.post("/versions/3/pin", json={"version": version})
    assert r.status_code == 400 and "version" in r.get_json()["error"], r.get_json()
    assert len(r.get_data()) < 1000


NESTED = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize("path", ["/setup", "/predict", "/webhook", "/train", "/versions/1/pin", "/jobs", "/validate"])
def test_deep_json_is_a_400_on_every_post_route(app_client, path):
    """Was a RecursionError (500) on every POST route; /versions/<id>/unpin reads no body."""
    client, _ = app_client
    assert client.post("/setup", json={"project": 1, "schema": NER_CONFIG}).status_code == 200
    for body in (NESTED, json.dumps({"project": 1, "extra_params": json.loads("[" * 900 + "]" * 900)}),
                 '{"a": ' * 50_000 + "1" + "}" * 50_000):
        r = client.post(path, data=body, content_type="application/json")
        assert r.status_code == 400 and "levels deep" in r.get_json()["error"], (path, r.status_code)


def test_deep_json_inside_extra_params_text(app_client):
    """Label Studio sends *Extra params* as the text the user typed; it is parsed with the same limit."""
    client, _ = app_client
    r = client.post("/setup", json={"project": 3, "schema": NER_CONFIG, "extra_params": "[" * 5000 + "]" * 5000})
    assert r.status_code == 400 and "extra_params" in r.get_json()["error"] and "levels deep" in r.get_json()["error"]
    r = client.post("/setup", json={"project": 3, "schema": NER_CONFIG, "extra_params": "[1]"})
    assert r.status_code == 400 and "JSON object" in r.get_json()["error"]


def test_string_literals_do_not_count_as_nesting(app_client):
    client, _ = app_client
    text = "[[[{{{" * 1000 + ' \\" ]]] '
    r = client.post("/predict", json={"project": 1, "label_config": NER_CONFIG, "tasks": [{"id": 1, "data": {"text": text}}]})
    assert r.status_code == 200, r.get_json()


@pytest.mark.parametrize("field", ["kind", "version", "action", "project"])
def test_echoed_values_are_truncated(app_client, field):
    client, _ = app_client
    huge = "x" * 5_000_000
    path = {"kind": "/jobs", "version": "/versions/3/pin", "action": "/webhook", "project": "/setup"}[field]
    client.post("/setup", json={"project": 3, "schema": NER_CONFIG})
    r = client.post(path, json={"kind": "train", "project": 3, field: huge, "schema": NER_CONFIG})
    assert r.status_code == 400 and len(r.get_data()) < 2000, (r.status_code, len(r.get_data()))
    r = client.get("/jobs/" + "j" * 3000)
    assert r.status_code == 404 and len(r.get_data()) < 2000


def test_unknown_projects_are_404_on_every_per_project_route(app_client):
    client, _ = app_client
    calls = [("GET", "/versions?project=41", None), ("POST", "/versions/41/pin", {"version": "v1"}),
             ("POST", "/versions/41/unpin", {}), ("GET", "/jobs?project=41", None), ("POST", "/jobs", {"kind": "train", "project": 41}),
             ("POST", "/train", {"project": 41}), ("GET", "/agreement?project=41", None),
             ("GET", "/agreement/41/plot.png", None), ("GET", "/llm/ledger?project=41", None),
             ("POST", "/predict", {"project": 41, "tasks": [{"id": 1, "data": {"text": "x"}}]}),
             ("POST", "/webhook", {"action": "ANNOTATION_CREATED", "project": {"id": 41}})]
    for method, path, body in calls:
        r = client.open(path, method=method, json=body)
        assert r.status_code == 404 and "unknown to this backend" in r.get_json()["error"], (path, r.status_code)
    assert client.post("/setup", json={"project": 41, "schema": NER_CONFIG}).status_code == 200
    assert client.get("/versions?project=41").status_code == 200
    assert client.get("/agreement/41/plot.png").status_code == 200  # known: an empty plot
    assert client.get("/llm/ledger?project=41").status_code == 200


def test_options_answers_the_same_everywhere(app_client):
    client, _ = app_client
    answers = {(r.status_code, r.headers.get("Allow"), r.get_data())
               for path in ("/setup", "/predict", "/versions", "/nope", "/jobs/x", "/versions/1/pin", "/", "/a/b/c")
               for r in [client.open(path, method="OPTIONS")]}
    assert len(answers) == 1, answers


def _auth_header(user: str, pw: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()}


def test_health_without_credentials_says_only_up(make_settings):
    from backend.app import create_app

    app = create_app(make_settings(BASIC_AUTH_USER="ls", BASIC_AUTH_PASS="pw-123456", LLM_API_KEY="sk-12345678",
                                   LLM_BASE_URL="http://10.9.8.7:8000/v1", LLM_BUDGET_USD="42"))
    client = app.test_client()
    r = client.get("/health")
    assert r.status_code == 200 and r.get_json() == {"status": "UP"}
    assert client.get("/health", headers=_auth_header("ls", "wrong-pass")).get_json() == {"status": "UP"}
    full = client.get("/health", headers=_auth_header("ls", "pw-123456")).get_json()
    assert full["status"] == "UP" and full["llm"]["enabled"] is True and "10.9.8.7" in json.dumps(full)
    app.extensions["lal"]["queue"].close()


def test_health_says_down_when_model_dir_is_gone(make_settings, tmp_path):
    import shutil

    from backend.app import create_app

    settings = make_settings()
    app = create_app(settings)
    shutil.rmtree(settings.model_dir)
    r = app.test_client().get("/health")
    assert r.status_code == 503 and r.get_json()["status"] == "DOWN" and "MODEL_DIR" in r.get_json()["detail"]
    app.extensions["lal"]["queue"].close()


@pytest.mark.parametrize("env, needle", [
    ({"BASIC_AUTH_USER": "ls"}, "BASIC_AUTH_USER is set but BASIC_AUTH_PASS is not"),
    ({"BASIC_AUTH_PASS": "pw-123456"}, "BASIC_AUTH_PASS is set but BASIC_AUTH_USER is not"),
    ({"BASIC_AUTH_USER": "ls", "BASIC_AUTH_PASS": "pw"}, "BASIC_AUTH_PASS is 2 characters"),
    ({"WEBHOOK_SECRET": "abc"}, "WEBHOOK_SECRET is 3 characters; use at least 16"),
    ({"WEBHOOK_SECRET": "x" * 15}, "WEBHOOK_SECRET is 15 characters"),
    ({"WEBHOOK_SECRET": "a/b" * 8}, "WEBHOOK_SECRET may hold only"),
])
def test_start_up_refuses_half_auth_and_weak_secrets(make_settings, env, needle):
    with pytest.raises(ValueError, match=needle):
        make_settings(**env)


def test_serve_refuses_half_auth_with_one_line(tmp_path):
    """``python -m backend serve`` stops before gunicorn starts, naming the variable."""
    import os

    env = {**os.environ, "MODEL_DIR": str(tmp_path / "var"), "BASIC_AUTH_USER": "ls", "PYTHONPATH": str(REPO)}
    env.pop("BASIC_AUTH_PASS", None)
    p = subprocess.run([sys.executable, "-m", "backend", "serve"], cwd=REPO, env=env, capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 2 and "BASIC_AUTH_USER is set but BASIC_AUTH_PASS is not" in p.stderr, p.stderr


@pytest.mark.parametrize("config, needle", [
    ('<View><Text name="a" value="$a"/><Text name="b" value="$b"/><Labels name="ner" toName="a"><Label value="PER"/>'
     '</Labels><Choices name="topic" toName="b"><Choice value="x"/></Choices></View>',
     '<Labels name="ner"> labels <Text name="a"> but <Choices name="topic"> labels <Text name="b">'),
    ('<View><Text name="a" value="$a"/><Text name="b" value="$b"/><Labels name="l1" toName="a"><Label value="PER"/>'
     '</Labels><Labels name="l2" toName="b"><Label value="LOC"/></Labels></View>', '2 <Labels> controls ("l1", "l2")'),
    ('<View><Text name="a" value="$a"/><Choices name="c1" toName="a"><Choice value="x"/></Choices>'
     '<Choices name="c2" toName="a"><Choice value="y"/></Choices></View>', '2 <Choices> controls'),
    ('<View><Text name="a" value="$a"/><Labels name="l" toName="a"><Label value="PER"/></Labels>'
     '<Choices name="c" toName="a" perRegion="true"><Choice value="x"/></Choices></View>', "perRegion"),
    ('<View><Text name="a" value="$a"/><Labels name="l" toName="a"><Label value="PER"/></Labels>'
     '<Image name="i" value="$img"/><RectangleLabels name="r" toName="i"><Label value="car"/></RectangleLabels></View>',
     "<RectangleLabels"),
    ('<View><Text name="a" value="$a"/><Labels name="l" toName="a"><Label value="PER"/></Labels>'
     '<Labels name="bad" toName="nowhere"><Label value="X"/></Labels></View>', 'toName="nowhere"'),
])
def test_configs_that_would_be_misread_are_refused(app_client, config, needle):
    """Before: /validate said ``ner + choices`` for the first config and the classifier trained on
    field ``a``; a second <Labels> or a broken one beside a good one was dropped without a word."""
    client, app = app_client
    for path, body in [("/validate", {"config": config}), ("/setup", {"project": 6, "schema": config})]:
        r = client.post(path, json=body)
        assert r.status_code == 400, (path, r.get_json())
        assert needle in r.get_json()["error"] and "This backend supports" in r.get_json()["error"]
    assert app.extensions["lal"]["backend"].store.project(6) == {}


def test_supported_configs_still_validate(app_client):
    client, _ = app_client
    both = NER_CONFIG.replace("</View>", '<Choices name="topic" toName="text"><Choice value="x"/></Choices>'
                              '<TextArea name="note" toName="text"/></View>')
    for config, kinds in [(NER_CONFIG, ["ner"]), (NEWS_CONFIG, ["choices"]), (both, ["ner", "choices"])]:
        r = client.post("/validate", json={"config": config})
        assert r.status_code == 200 and r.get_json()["kinds"] == kinds
