"""Security: no unsafe deserialisation anywhere in the code, entity expansion refused fast,
secrets never written anywhere, and basic auth + the secret webhook prefix working with the real
Label Studio 1.23.2."""
from __future__ import annotations

import ast
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import NER_CONFIG, REPO
from devtools.fakels import FakeLabelStudio
from tests.faults.harness import FAST_TRAINING, HAU_TRAIN, event, hausa, wait_idle

UNSAFE_MODULES = {"pickle", "cPickle", "joblib", "dill", "cloudpickle", "shelve", "marshal"}


def _unsafe_calls(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    bad = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            bad += [f"import {a.name}" for a in node.names if a.name.split(".")[0] in UNSAFE_MODULES]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in UNSAFE_MODULES:
            bad.append(f"from {node.module} import ...")
        elif isinstance(node, ast.Call):
            name = ast.unparse(node.func)
            kw = {k.arg: k.value for k in node.keywords}
            const = lambda k: isinstance(kw.get(k), ast.Constant) and kw[k].value  # noqa: E731
            if name.endswith("torch.load"):
                if const("weights_only") is not True:
                    bad.append(f"{name}(...) without weights_only=True")
            elif name.endswith(("np.load", "numpy.load")) and const("allow_pickle") is True:
                bad.append(f"{name}(allow_pickle=True)")
            elif name.endswith("yaml.load") and "Safe" not in ast.unparse(kw.get("Loader", ast.Constant(""))):
                bad.append("yaml.load without SafeLoader")
            elif name.endswith("read_pickle"):
                bad.append(name)
    name = path.relative_to(REPO) if path.is_relative_to(REPO) else path.name
    return [f"{name}:{b}" for b in bad]


def test_no_unsafe_deserialisation_in_model_or_backend():
    files = sorted((REPO / "model").rglob("*.py")) + sorted((REPO / "backend").rglob("*.py"))
    assert len(files) > 20
    found = [b for f in files for b in _unsafe_calls(f)]
    assert found == [], found


def test_unsafe_scanner_catches_what_it_should(tmp_path):
    """The scanner above must be able to fail."""
    f = tmp_path / "probe_unsafe.py"
    f.write_text("import pickle\nimport torch\nimport numpy as np\nimport yaml\n"
                 "torch.load('m.pt')\ntorch.load('m.pt', weights_only=False)\nnp.load('a.npz', allow_pickle=True)\n"
                 "yaml.load(open('x'))\ntorch.load('ok.pt', weights_only=True)\n")
    found = _unsafe_calls(f)
    assert len(found) == 5, found


def test_entity_expansion_is_refused_fast():
    from backend.errors import BadRequest
    from backend.label_config import parse_label_config
    from tests.faults.test_fuzz import BILLION_LAUGHS

    t0 = time.perf_counter()
    with pytest.raises(BadRequest, match="DTDs and entities are not allowed"):
        parse_label_config(BILLION_LAUGHS)
    with pytest.raises(BadRequest, match="DTDs and entities"):
        parse_label_config('<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><View>&e;</View>')
    assert time.perf_counter() - t0 < 1.0


SECRETS = {"LABEL_STUDIO_API_KEY": "lsTok3n-ZQXJ-7781-secret", "BASIC_AUTH_PASS": "bAsicPw-KWPV-9913",
           "WEBHOOK_SECRET": "whS3cret-MNBV-4402", "LLM_API_KEY": "sk-LLMkey-YTRE-5530"}


@pytest.mark.slow
def test_secrets_never_reach_logs_files_or_responses(backend_process, tmp_path):
    """A full session with distinctive secrets (debug logging, access log on, faults that produce
    error messages), then a byte search of everything it wrote and answered."""
    from devtools.fakellm.server import load_gold, start_server

    fake = FakeLabelStudio(token=SECRETS["LABEL_STUDIO_API_KEY"]).start()
    llm = start_server(load_gold(conll=str(HAU_TRAIN)))
    data = hausa(25)
    ids = fake.add_tasks(1, [t for t, _ in data] + [t for t, _ in hausa(5, skip=25)])
    for tid, (_, regions) in zip(ids, data):
        fake.annotate(1, tid, regions)
    model_dir = tmp_path / "var"
    env = {**FAST_TRAINING, **SECRETS, "LABEL_STUDIO_URL": fake.url, "BASIC_AUTH_USER": "labelstudio",
           "LLM_BASE_URL": llm.base_url, "LLM_MODEL": "perfect", "PREDICT_SOURCE": "both", "LOG_LEVEL": "DEBUG",
           "ACCESS_LOG": "true", "LLM_TIMEOUT_S": "2", "LLM_MAX_RETRIES": "1"}
    be = backend_process(env, model_dir=model_dir)
    auth = ("labelstudio", SECRETS["BASIC_AUTH_PASS"])
    hook = f"{be.url}/{SECRETS['WEBHOOK_SECRET']}"
    answers: list[bytes] = []

    def call(method, url, **kw):
        r = requests.request(method, url, timeout=60, **kw)
        answers.append(r.content + str(r.headers).encode())
        return r

    try:
        call("POST", f"{hook}/setup", json={"project": "1.1", "schema": NER_CONFIG, "hostname": fake.url,
                                            "access_token": SECRETS["LABEL_STUDIO_API_KEY"]}, auth=auth)
        pred = call("POST", f"{hook}/predict", json={"project": "1.1", "label_config": NER_CONFIG,
                                                     "tasks": [{"id": i, "data": {"text": t}} for i, (t, _) in
                                                               zip(ids, data[:3])]}, auth=auth)
        assert pred.ok and {r["model_version"] for r in pred.json()["results"]} == {"llm:perfect"}
        r = call("POST", f"{hook}/webhook", json=event("ANNOTATION_CREATED", 1, 1, ids[0]))
        assert r.status_code == 201
        job = r.json()["job"]
        # refused attempts: wrong password, wrong prefix, password as user name, secret in a query
        assert call("POST", f"{be.url}/setup", json={"project": 1}, auth=("labelstudio", "nope")).status_code == 401
        assert call("POST", f"{be.url}/{SECRETS['WEBHOOK_SECRET']}x/webhook", json={"action": "X"}).status_code == 401
        assert call("GET", f"{be.url}/jobs?token={SECRETS['LABEL_STUDIO_API_KEY']}",
                    auth=(SECRETS["BASIC_AUTH_PASS"], "x")).status_code == 401
        wait_idle(be.url, 1, timeout=240, auth=auth)
        assert call("GET", f"{be.url}/jobs/{job}", auth=auth).json()["status"] == "finished"
        # a Label Studio that refuses the token: the failure is reported, the token is not
        fake.fault = "401"
        r = call("POST", f"{be.url}/train", json={"project": 1}, auth=auth)
        wait_idle(be.url, 1, timeout=120, auth=auth)
        failed = call("GET", f"{be.url}/jobs/{r.json()['job']}", auth=auth).json()
        assert failed["status"] == "failed" and "LABEL_STUDIO_API_KEY" in failed["error"]
        for path in ("/health", "/versions", "/jobs", "/llm/ledger"):
            call("GET", be.url + path, auth=auth)
    finally:
        be.stop()
        fake.stop()
        llm.stop()

    written = {p: p.read_bytes() for p in [*model_dir.rglob("*"), be.log_path] if p.is_file()}
    assert any(p.suffix == ".sqlite3" for p in written), "the LLM cache/ledger should have been written"
    log_text = be.log_path.read_bytes()
    assert b"POST /" in log_text, "the access log was not on: the test would miss URL leaks"
    def context(blob: bytes, s: str) -> str:
        i = blob.find(s.encode())
        return blob[max(0, i - 150):i + 60].decode(errors="replace").replace(s, f"<{s}>")

    leaks = [(name, str(p), context(blob, s)) for name, s in SECRETS.items() for p, blob in written.items()
             if s.encode() in blob]
    leaks += [(name, "HTTP response", context(blob, s)) for name, s in SECRETS.items() for blob in answers
              if s.encode() in blob]
    assert leaks == []


@pytest.mark.e2e
@pytest.mark.slow
def test_real_label_studio_with_basic_auth_and_secret_prefix(label_studio, backend_process):
    """Label Studio 1.23.2 connects with basic auth to ``http://host:port/<WEBHOOK_SECRET>``: its
    /health, /setup, /predict and START_TRAINING carry the credentials, its project webhooks arrive
    under the prefix; anyone else is refused."""
    from label_studio_sdk.client import LabelStudio

    from tests.e2e.helpers import ner_result, ner_tasks, task_dicts, wait_for

    user, pw, secret = "lsbackend", "pw-e2e-7731-basic", "hook-e2e-5521-secret"
    be = backend_process({"LABEL_STUDIO_URL": label_studio.url, "LABEL_STUDIO_API_KEY": label_studio.token,
                          "NER_MAX_EPOCHS": "2", "BASIC_AUTH_USER": user, "BASIC_AUTH_PASS": pw,
                          "WEBHOOK_SECRET": secret})
    auth = (user, pw)
    ls = LabelStudio(base_url=label_studio.url, api_key=label_studio.token)
    project = ls.projects.create(title="basic auth", label_config=NER_CONFIG).id
    tasks, gold = ner_tasks(12)
    ls.projects.import_tasks(id=project, request=tasks)
    ml = ls.ml.create(url=f"{be.url}/{secret}", project=project, title="secured", is_interactive=False,
                      auth_method="BASIC_AUTH", basic_auth_user=user, basic_auth_pass=pw)
    assert ml.state in ("CO", "CONNECTED"), ml.state  # /health and /setup passed with basic auth
    # unauthenticated callers are refused everywhere but /health
    assert requests.post(f"{be.url}/setup", json={"project": project, "schema": NER_CONFIG}).status_code == 401
    assert requests.post(f"{be.url}/webhook", json=event("ANNOTATION_CREATED", project)).status_code == 401
    assert requests.post(f"{be.url}/predict", json={"project": project, "tasks": []}, auth=(user, "x")).status_code == 401

    # Label Studio's own ANNOTATION_CREATED webhooks (no credentials) arrive under the prefix
    by_id = {t["id"]: t for t in task_dicts(ls, project)}
    ids = sorted(by_id)
    for tid, spans in zip(ids[:8], gold[:8]):
        ls.annotations.create(id=tid, result=ner_result(by_id[tid]["data"]["text"], spans))

    def trained(min_jobs: int):
        js = requests.get(f"{be.url}/jobs", params={"project": project}, auth=auth, timeout=10).json()["jobs"]
        done = [j for j in js if j["kind"] == "train" and j["status"] == "finished"]
        active = [j for j in js if j["status"] in ("queued", "running")]
        return done if len(done) >= min_jobs and not active else None

    jobs = wait_for(lambda: trained(1), 240, "training from Label Studio's webhooks")
    assert {j["reason"] for j in jobs} & {"ANNOTATION_CREATED"}
    # Start Training: START_TRAINING with basic auth
    ls.ml.train(id=ml.id)
    jobs = wait_for(lambda: trained(len(jobs) + 1), 240, "START_TRAINING")
    assert "START_TRAINING" in {j["reason"] for j in jobs}
    log = be.log()
    assert secret not in log and pw not in log


HARD_SECRET = "whS3cret-HARD-0427-zq"


def _encodings(secret: str) -> list[str]:
    """Spellings of the secret a client can put in a path that gunicorn decodes to the secret
    (or that still read as it): percent-encoded hex in either case, encoded twice, mixed case."""
    lower = "".join(f"%{ord(c):02x}" for c in secret)
    upper = "".join(f"%{ord(c):02X}" for c in secret)
    some = "".join(f"%{ord(c):02X}" if i % 2 else c for i, c in enumerate(secret))
    twice = "".join(f"%25{ord(c):02X}" for c in secret[:4]) + secret[4:]
    return [lower, upper, some, twice, secret.upper(), secret.swapcase()]


@pytest.mark.slow
def test_gunicorn_edges(backend_process, tmp_path):
    """Through the real gunicorn: a chunked body over MAX_REQUEST_MB is a 413 (was cut and
    answered 'not valid JSON'), a client SCRIPT_NAME header is ignored (was a 500), OPTIONS is the
    same on every path, no control socket is opened (gunicorn's default path is per user, shared
    by every instance), and every encoding of the webhook secret is redacted from the access log."""
    from urllib.parse import unquote

    runtime = tmp_path / "xdg"
    runtime.mkdir()
    env = {"BASIC_AUTH_USER": "labelstudio", "BASIC_AUTH_PASS": "bAsicPw-HARD-5531", "WEBHOOK_SECRET": HARD_SECRET,
           "ACCESS_LOG": "true", "LOG_LEVEL": "DEBUG", "MAX_REQUEST_MB": "0.05", "XDG_RUNTIME_DIR": str(runtime),
           "HOME": str(tmp_path)}
    be = backend_process(env)
    auth = ("labelstudio", env["BASIC_AUTH_PASS"])
    try:
        def chunks(n: int, size: int = 8192):
            for _ in range(n):
                yield b" " * size
            yield b'{"project": 1}'

        r = requests.post(f"{be.url}/validate", data=chunks(20), auth=auth, timeout=30,
                          headers={"Content-Type": "application/json"})
        assert r.status_code == 413, (r.status_code, r.text[:200])
        r = requests.post(f"{be.url}/validate", data=chunks(2), auth=auth, timeout=30,
                          headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and "must be a string" in r.json()["error"], r.text[:200]  # read whole
        r = requests.post(f"{be.url}/validate", data="[" * 40_000, auth=auth, timeout=30,
                          headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and "levels deep" in r.json()["error"]
        for path in ("/health", "/versions", "/nope"):
            r = requests.get(be.url + path, headers={"SCRIPT_NAME": "/elsewhere"}, auth=auth, timeout=10)
            assert r.status_code < 500, (path, r.status_code, r.text[:200])
        opts = {(r.status_code, r.headers.get("Allow"), r.content)
                for p in ("/setup", "/nope", "/versions/1/pin", f"/{HARD_SECRET}/webhook")
                for r in [requests.options(be.url + p, timeout=10)]}
        assert len(opts) == 1, opts
        for spelling in _encodings(HARD_SECRET):
            requests.post(f"{be.url}/{spelling}/webhook", json={"action": "PROJECT_UPDATED", "project": 1}, timeout=10)
            requests.get(f"{be.url}/versions?token={spelling}", auth=auth, timeout=10)
        assert requests.get(f"{be.url}/health", timeout=10).json() == {"status": "UP"}
    finally:
        be.stop()
    assert not list(runtime.iterdir()) and not (tmp_path / ".gunicorn").exists(), "a control socket was opened"
    log = be.log_path.read_text(errors="replace")
    assert "POST /" in log, "the access log was not on"
    decoded = log
    for _ in range(3):
        decoded = unquote(decoded)
    assert HARD_SECRET.lower() not in decoded.lower(), [ln for ln in decoded.splitlines() if HARD_SECRET.lower() in ln.lower()][:3]
    assert "Traceback" not in log and "Error handling request" not in log, log[-3000:]


@pytest.mark.parametrize("env, needle", [
    ({"BASIC_AUTH_USER": "labelstudio"}, "BASIC_AUTH_USER is set but BASIC_AUTH_PASS is not"),
    ({"BASIC_AUTH_PASS": "bAsicPw-HARD-5531"}, "BASIC_AUTH_PASS is set but BASIC_AUTH_USER is not"),
    ({"WEBHOOK_SECRET": "short"}, "WEBHOOK_SECRET is 5 characters"),
])
def test_gunicorn_refuses_half_auth_and_weak_secrets(tmp_path, env, needle):
    """Run as the Dockerfile's CMD or by hand (``gunicorn -c backend/gunicorn.conf.py``): before,
    BASIC_AUTH_USER alone left /versions, /jobs, /llm/ledger and POST /versions/1/unpin open."""
    import os
    import subprocess
    import sys

    from devtools.ls_process import free_port

    base = {k: v for k, v in os.environ.items() if k not in ("BASIC_AUTH_USER", "BASIC_AUTH_PASS", "WEBHOOK_SECRET")}
    run_env = {**base, "MODEL_DIR": str(tmp_path / "var"), "PORT": str(free_port()), "HOST": "127.0.0.1", **env}
    p = subprocess.run([sys.executable, "-m", "gunicorn", "-c", str(REPO / "backend" / "gunicorn.conf.py"),
                        "backend.wsgi:app"], cwd=tmp_path, env=run_env, capture_output=True, text=True, timeout=120)
    assert p.returncode != 0 and needle in p.stdout + p.stderr, (p.returncode, (p.stdout + p.stderr)[-2000:])
