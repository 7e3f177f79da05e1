"""Bad input on every route: malformed JSON, wrong types, huge payloads, unknown projects, hostile
label configs (entities, billion laughs, deep nesting, 10,000 labels) and hostile texts (empty,
enormous, mixed scripts, lone surrogates). Every answer must be < 500, every 4xx must carry a
message, and memory must stay bounded. Volume runs on Flask's test client; a smaller corpus is
replayed against the real gunicorn process."""
from __future__ import annotations

import json

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import NER_CONFIG
from tests.faults.conftest import seed_version

ROUTES = [("GET", "/health"), ("POST", "/setup"), ("POST", "/predict"), ("POST", "/webhook"), ("POST", "/train"),
          ("GET", "/versions"), ("POST", "/versions/1/pin"), ("POST", "/versions/1/unpin"), ("GET", "/jobs"),
          ("POST", "/jobs"), ("GET", "/jobs/abc"), ("GET", "/llm/ledger"), ("POST", "/validate"),
          ("POST", "/versions/999999999999/pin"), ("GET", "/jobs/..%2F..%2Fetc%2Fpasswd"), ("GET", "/versions?project=x")]

BILLION_LAUGHS = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
                  + "".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
                            for i in range(1, 10))
                  + ']><View><Text name="t" value="&lol9;"/></View>')
HOSTILE_CONFIGS = [
    BILLION_LAUGHS,
    '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><View>&e;</View>',
    '<!DOCTYPE x [<!ENTITY % p SYSTEM "http://127.0.0.1:1/x.dtd"> %p;]><View/>',
    "<View>" * 10_000 + "</View>" * 10_000,
    "<View><Labels name='l' toName='t'>" + "<Label value='x'/>" * 10_000 + "</Labels><Text name='t' value='$t'/></View>",
    "<View><Labels name='l' toName='t'><Label value='A'/></Labels><Image name='t' value='$img'/></View>",
    "<View><Labels name='l' toName='t'><Label value='A'/></Labels><Text name='t' value=''/></View>",
    "<View><Labels name='l' toName='t'></Labels><Text name='t' value='$t'/></View>",
    "<View>" + "x" * 1_100_000 + "</View>",
    "\x00\x01<View>", "", "   ", "<View", "<a><b></a></b>", "<View xmlns:x='urn:x'><x:Labels/></View>",
]
TEXTS = ["", " ", "\n\t", "x" * 200_000, "Mùsá ya je Kano 🇳🇬 ولاية كنو ሰላም 北京 \u200d\u202e",
         "\ud800 lone surrogate", "a\u0301" * 1000, "\x00\x1f control", "ⓚⓐⓝⓞ " * 50]


# inputs of the security probe (issue 19) that reached a 500 or were accepted: sent as raw bodies
NESTED_100K = "[" * 100_000 + "]" * 100_000
UNICODE_IDS = ["²", "①", "١٢", "𝟏𝟐", "１", "7.abc", "7\n", "9" * 5000, 2147483648, 1.5, True]
PROBE_BODIES: list[str] = [
    NESTED_100K, '{"a":' * 100_000 + "1" + "}" * 100_000,
    '{"project": 1, "schema": "<View/>", "extra_params": ' + "[" * 1000 + "]" * 1000 + "}",
    '{"project": 1, "schema": "<View/>", "extra_params": "' + "[" * 5000 + "]" * 5000 + '"}',
    *(json.dumps(body) for pid in UNICODE_IDS
      for body in ({"project": pid, "schema": NER_CONFIG}, {"project": pid, "tasks": [], "label_config": NER_CONFIG},
                   {"action": "ANNOTATION_CREATED", "project": {"id": pid, "label_config": NER_CONFIG}},
                   {"kind": "train", "project": pid})),
    json.dumps({"version": "v" + "1" * 5_000_000}), json.dumps({"version": "v١"}),
    json.dumps({"kind": "k" * 5_000_000, "project": 1}), json.dumps({"action": "A" * 5_000_000, "project": 1}),
]
PROBE_PATHS = [("POST", "/versions/²/pin"), ("POST", "/versions/" + "9" * 5000 + "/pin"), ("POST", "/versions/١٢/unpin"),
               ("GET", "/agreement/①/plot.png"), ("GET", "/agreement/424242/plot.png"), ("GET", "/jobs/" + "j" * 3000),
               ("GET", "/versions?project=" + "9" * 5000), ("GET", "/llm/ledger?project=²"), ("GET", "/jobs?project=１")]


def json_values(max_leaves: int = 12):
    texts = st.text(max_size=40) | st.sampled_from(["\ud800", "a\udfffb", "\ud83c\udf89", "\x00", "\u202e"])
    scalars = st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False) | texts
    return st.recursive(scalars, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=10), c, max_size=4),
                        max_leaves=max_leaves)


def _valid_bodies() -> list[dict]:
    return [
        {"project": "1.17", "label_config": NER_CONFIG, "tasks": [{"id": 1, "data": {"text": "Musa ya je Kano"}}]},
        {"project": "1.17", "schema": NER_CONFIG, "hostname": "http://ls", "access_token": "x"},
        {"action": "ANNOTATION_CREATED", "project": {"id": 1, "label_config": NER_CONFIG}, "annotation": {"id": 1}},
        {"kind": "train", "project": 1}, {"version": "v1"}, {"config": NER_CONFIG},
    ]


def mutated_bodies():
    """A valid body with one field replaced by an arbitrary JSON value (hits deeper validation)."""
    return st.builds(lambda body, key, val: {**body, key: val},
                     st.sampled_from(_valid_bodies()),
                     st.sampled_from(["project", "tasks", "label_config", "schema", "action", "annotation",
                                      "kind", "version", "config", "params", "extra_params", "data"]),
                     json_values())


def bodies():
    return (json_values().map(lambda v: ("json", v)) | mutated_bodies().map(lambda v: ("json", v))
            | st.binary(max_size=200).map(lambda b: ("raw", b))
            | st.sampled_from(HOSTILE_CONFIGS).map(lambda c: ("json", {"project": 1, "config": c, "schema": c,
                                                                        "label_config": c, "tasks": [{"data": {"text": "a"}}]}))
            | st.sampled_from(TEXTS).map(lambda t: ("json", {**_valid_bodies()[0], "tasks": [{"id": 1, "data": {"text": t}}]}))
            | st.sampled_from(PROBE_BODIES).map(lambda b: ("raw", b.encode()))
            | st.sampled_from(UNICODE_IDS).map(lambda pid: ("json", {**_valid_bodies()[0], "project": pid})))


def rss_mb(pid: str | int = "self") -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def check(status: int, body: bytes) -> None:
    assert status < 500, body[:300]
    if status >= 400:
        msg = json.loads(body)["error"]
        assert isinstance(msg, str) and msg.strip()


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory, tiny_model):
    from backend.app import create_app
    from backend.settings import Settings

    d = tmp_path_factory.mktemp("fuzz") / "var"
    seed_version(d, 1, tiny_model)  # /predict runs a real model on the hostile texts
    app = create_app(Settings.from_env({"MODEL_DIR": str(d), "LOG_LEVEL": "CRITICAL"}))
    yield app
    app.extensions["lal"]["queue"].close()


def _send(client, method: str, path: str, kind: str, body) -> tuple[int, bytes]:
    if method == "GET":
        r = client.get(path)
    elif kind == "raw":
        r = client.post(path, data=body, content_type="application/json")
    else:
        r = client.post(path, data=json.dumps(body), content_type="application/json")
    return r.status_code, r.get_data()


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(route=st.sampled_from(ROUTES), body=bodies())
def test_fuzz_every_route_flask(fuzz_app, route, body):
    status, data = _send(fuzz_app.test_client(), *route, *body)
    check(status, data)


def test_probe_inputs_on_every_route(fuzz_app):
    """Every input of the probe on every route: < 500, a message, and an answer of bounded size
    (a 5 MB version or kind was echoed back whole)."""
    client = fuzz_app.test_client()
    posts = [r for r in ROUTES if r[0] == "POST"]
    for method, path in posts:
        for body in PROBE_BODIES:
            r = client.post(path, data=body, content_type="application/json")
            check(r.status_code, r.get_data())
            assert len(r.get_data()) < 5000, (path, body[:80], len(r.get_data()))
    for method, path in PROBE_PATHS:
        r = client.open(path, method=method, json={"version": "v1"} if method == "POST" else None)
        check(r.status_code, r.get_data())
        assert 400 <= r.status_code < 500 and len(r.get_data()) < 5000, (path[:60], r.status_code)


@pytest.mark.parametrize("config", HOSTILE_CONFIGS, ids=range(len(HOSTILE_CONFIGS)))
def test_hostile_label_configs_are_refused_with_a_reason(fuzz_app, config):
    client = fuzz_app.test_client()
    for path, body in [("/validate", {"config": config}), ("/setup", {"project": 2, "schema": config}),
                       ("/predict", {"project": 2, "label_config": config, "tasks": [{"data": {"text": "a"}}]}),
                       ("/webhook", {"action": "PROJECT_UPDATED", "project": {"id": 2, "label_config": config}})]:
        r = client.post(path, json=body)
        if path == "/webhook" and config == "":  # no config in the event: nothing to refuse or store
            assert r.status_code == 200 and r.get_json()["status"] == "ignored"
            continue
        assert r.status_code in (400, 413), (path, r.status_code)
        assert r.get_json()["error"]
    assert "label_config" not in __import__("backend.model_store", fromlist=["x"]).ModelStore(
        fuzz_app.extensions["lal"]["settings"].model_dir).project(2)


def test_hostile_texts_get_an_answer(fuzz_app):
    client = fuzz_app.test_client()
    for text in TEXTS:
        r = client.post("/predict", data=json.dumps({**_valid_bodies()[0], "tasks": [{"id": 1, "data": {"text": text}}]}),
                        content_type="application/json")
        check(r.status_code, r.get_data())
        if r.status_code == 200:
            res = r.get_json()["results"][0]
            for region in res["result"]:  # offsets stay exact whatever the script
                v = region["value"]
                assert text[v["start"]:v["end"]] == v["text"]


@pytest.mark.parametrize("path, body, needle", [
    ("/validate", {"config": ["<View/>"]}, "must be a string"),
    ("/webhook", {"action": "PROJECT_UPDATED", "project": {"id": 3, "label_config": {"x": 1}}}, "must be a string"),
    ("/setup", {"project": 3, "schema": "<View>\ud800</View>"}, "lone surrogate"),
    ("/setup", {"project": 3, "schema": NER_CONFIG, "hostname": "\udfff"}, "lone surrogate"),
    ("/predict", {**_valid_bodies()[0], "tasks": [{"id": 1, "data": {"text": "\ud800 x"}}]}, "lone surrogate"),
])
def test_regressions_found_by_fuzzing(fuzz_app, path, body, needle):
    """Each of these was a 500 (unhashable config in the parser cache; a JSON-escaped lone surrogate
    reaching the tagger, the XML parser or project.json) before the fixes in app.py/label_config.py."""
    r = fuzz_app.test_client().post(path, data=json.dumps(body), content_type="application/json")
    assert r.status_code == 400 and needle in r.get_json()["error"], r.get_json()


def test_memory_stays_bounded(fuzz_app):
    """Repeat the worst payloads; the process must not keep what it refused."""
    client = fuzz_app.test_client()
    worst = [{"config": c} for c in HOSTILE_CONFIGS] + [{**_valid_bodies()[0], "tasks": [{"id": 1, "data": {"text": t}}]}
                                                        for t in TEXTS]
    for b in worst:  # warm caches and allocator first
        client.post("/validate" if "config" in b else "/predict", json=b)
    before = rss_mb()
    for _ in range(5):
        for b in worst:
            check(*(lambda r: (r.status_code, r.get_data()))(client.post("/validate" if "config" in b else "/predict", json=b)))
    grown = rss_mb() - before
    assert grown < 100, f"RSS grew by {grown:.0f} MB over 5 rounds of bad input"


def test_fuzz_against_gunicorn(backend_process, tiny_model, tmp_path):
    """A smaller corpus over real HTTP (gunicorn parsing, size limits): no 5xx, worker RSS bounded."""
    import random

    model_dir = tmp_path / "var"
    seed_version(model_dir, 1, tiny_model)
    be = backend_process({"LOG_LEVEL": "WARNING"}, model_dir=model_dir)
    rng = random.Random(3)
    corpus = ([("json", {"config": c}) for c in HOSTILE_CONFIGS]
              + [("json", {**_valid_bodies()[0], "tasks": [{"id": 1, "data": {"text": t}}]}) for t in TEXTS]
              + [("raw", bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))) for _ in range(20)]
              + [("json", v) for v in ([], 1, "x", None, {"project": -1}, {"project": 2**40}, {"tasks": [{}] * 20000})]
              + [("raw", b.encode()) for b in PROBE_BODIES])
    worker = None
    sizes = []
    for rnd in range(2):
        # gunicorn itself answers a request line over 4094 bytes with an HTML 414 (never the app)
        for method, path in ROUTES + [p for p in PROBE_PATHS if len(p[1]) < 4000]:
            if method == "GET":
                r = requests.get(be.url + path, timeout=60)
                check(r.status_code, r.content)
                continue
            for kind, body in corpus[rnd::2]:
                data = body if kind == "raw" else json.dumps(body)
                r = requests.post(be.url + path, data=data, headers={"Content-Type": "application/json"}, timeout=60)
                check(r.status_code, r.content)
        import subprocess

        kids = subprocess.run(["pgrep", "-P", str(be.proc.pid)], capture_output=True, text=True).stdout.split()
        worker = worker or (kids[0] if kids else None)
        assert worker in kids, "the gunicorn worker died and was replaced"
        sizes.append(rss_mb(worker))
    assert be.proc.poll() is None
    assert sizes[1] - sizes[0] < 100, f"worker RSS {sizes}"
