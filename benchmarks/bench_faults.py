"""Fault benchmark: the scenarios of ``tests/faults`` run once at full size against the real
gunicorn backend, reported as one table (the tests assert; this counts).

1. webhook storm: N annotation events from T threads for one project (fake Label Studio API of
   ``devtools/fakels.py``) -> answered inside LS's 1 s timeout, trainings run, annotations lost;
2. crashes: SIGKILL of the backend during ``fit`` (restart, old version must answer at once, the
   job must be retried) and K SIGKILLs of a process looping ``ModelStore.save_version`` at random
   moments (no partial version may ever be listed) -> injected / recovered;
3. bad input: random JSON, mutated Label Studio payloads, hostile label configs and texts over
   every route (Flask test client for volume, plus a slice over real HTTP) -> tried / 5xx;
4. secrets: the session runs with distinctive LS token, basic-auth password, webhook secret and
   LLM key, debug logging and the access log on; log, MODEL_DIR and responses are searched;
5. probe (issue 19): the security probe's inputs (JSON nested 100,000 levels, Unicode-digit,
   5,000-digit and out-of-range ids, 5 MB versions and kinds, loose ids in paths, unknown projects'
   plots) on every route through Flask and a second gunicorn (MAX_REQUEST_MB=1) -> tried / 5xx /
   largest answer; chunked bodies over the limit -> 413; OPTIONS answers; client SCRIPT_NAME;
   percent-encoded and re-cased webhook secrets in paths, searched for in the access log after
   decoding; a gunicorn start with half of the basic-auth pair -> refused with a message.

6. fairness (issue 19.5): Label Studio down (connections dropped) for 30 projects with two
   webhooks each queued and more arriving -> how long a real project's webhook waits before its
   training starts, against the longest failing job; jobs held by the back-off; /jobs total;
7. readers (issue 19.6): every MasakhaNEWS split read (articles, beside the old unquoted reader
   in the same run), and randomly mutated TSV / CoNLL / JSONL files -> refused naming file:line,
   read, or failed any other way (must be 0).

``--phases`` runs a subset (e.g. ``--phases probe``).

Baseline in the same run: the same webhook count sent sequentially with no training running.
Writes ``benchmarks/out/faults.json`` and ``benchmarks/results/faults.md``.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys
import tempfile
import time
from pathlib import Path

import requests
from tqdm import tqdm

from benchmarks import save_results

PHASES = ("storm", "crash_fit", "crash_save", "bad_input", "probe", "fairness", "readers")
SECRETS = {"LABEL_STUDIO_API_KEY": "lsTok3n-BENCH-6610-secret", "BASIC_AUTH_PASS": "bAsicPw-BENCH-2201",
           "WEBHOOK_SECRET": "whS3cret-BENCH-7788", "LLM_API_KEY": "sk-LLMkey-BENCH-3394"}


def machine() -> dict:
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "?")
    return {"nproc": os.cpu_count(), "cpu": cpu, "loadavg_start": os.getloadavg()}


def storm_phase(args, be, fake, auth, prefix, answers) -> dict:
    from tests.faults.harness import hausa, pct, serving, setup, storm, wait_idle

    data = hausa(args.tasks)
    ids = fake.add_tasks(1, [t for t, _ in data] + [t for t, _ in hausa(20, skip=args.tasks)])
    setup(be.url, 1, auth=auth)
    # baseline: 50 sequential webhooks for an unknown-to-training action (no job, no training)
    base = []
    for _ in range(50):
        t0 = time.perf_counter()
        requests.post(f"{be.url}{prefix}/webhook", json={"action": "PROJECT_UPDATED", "project": 1}, timeout=5)
        base.append(time.perf_counter() - t0)
    st = storm(be.url, fake, 1, ids[:args.tasks], [r for _, r in data], n_events=args.events, threads=args.threads,
               url_prefix=prefix, auth=auth)
    js = wait_idle(be.url, 1, timeout=600, auth=auth)
    trains = [j for j in js if j["kind"] == "train"]
    versions = serving(be.url, 1, auth=auth)["versions"]
    if not versions:
        raise RuntimeError(f"the storm trained nothing; jobs: {json.dumps(js)[:2000]}")
    final = versions[-1]
    answers.append(json.dumps(js).encode())
    return {"sent": st["sent"], "answered_2xx": sum(200 <= c < 300 for c in st["statuses"]), "in_time": st["in_time"],
            "p50_ms": round(st["p50"] * 1000, 1), "p95_ms": round(st["p95"] * 1000, 1), "max_ms": round(st["max"] * 1000, 1),
            "baseline_sequential_p50_ms": round(pct(base, 50) * 1000, 1), "wall_s": round(st["wall_s"], 1),
            "max_jobs_active": st["max_active"], "trainings_run": sum(j["status"] in ("finished", "failed") for j in trains),
            "trainings_failed": sum(j["status"] == "failed" for j in trains), "annotations": fake.n_annotated(1),
            "final_version": final["version"], "final_n_examples": final["n_examples"],
            "lost": fake.n_annotated(1) - final["n_examples"]}


def crash_fit_phase(be, fake, auth, start_backend) -> tuple[dict, object]:
    """Annotate more, start training, SIGKILL inside fit, restart, check."""
    from tests.conftest import NER_CONFIG
    from tests.faults.harness import hausa, serving, wait_idle

    before_v = serving(be.url, 1, auth=auth)["serving"]["version"]
    extra = hausa(30, skip=500)
    for tid, (_, regs) in zip(fake.add_tasks(1, [t for t, _ in extra]), extra):
        fake.annotate(1, tid, regs)
    n_lists = fake.count("GET", "/api/tasks")
    job = requests.post(f"{be.url}/train", json={"project": 1}, auth=auth, timeout=10).json()["job"]
    end = time.monotonic() + 60
    while fake.count("GET", "/api/tasks") == n_lists and time.monotonic() < end:
        time.sleep(0.05)
    time.sleep(1.0)
    in_fit = requests.get(f"{be.url}/jobs/{job}", auth=auth, timeout=10).json()["status"] == "running"
    be.stop(signal.SIGKILL)
    again = start_backend(be.port)
    t0 = time.perf_counter()
    r = requests.post(f"{again.url}/predict", auth=auth, timeout=60, json={
        "project": "1.1", "label_config": NER_CONFIG, "tasks": [{"id": 1, "data": {"text": "Musa ya je Kano"}}]})
    first_s = time.perf_counter() - t0
    old_serves = r.ok and r.json()["results"][0]["model_version"] == before_v
    js = wait_idle(again.url, 1, timeout=600, auth=auth)
    retry = next((j for j in js if j["reason"] == f"retry of {job}"), None)
    retried = bool(retry and retry["status"] == "finished"
                   and retry["result"]["n_examples"] == fake.n_annotated(1))
    return {"killed_in_fit": in_fit, "old_version_served_after_restart": old_serves,
            "first_predict_after_restart_s": round(first_s, 2), "retried_and_trained_on_all": retried,
            "recovered": bool(in_fit and old_serves and retried)}, again


def crash_save_phase(kills: int, tiny_model: Path) -> dict:
    from backend.model_store import ModelStore
    from tests.faults.conftest import seed_version
    from tests.faults.harness import kill_during_save, tree_hash

    root = Path(tempfile.mkdtemp(prefix="bench-save-")) / "var"
    seed_version(root, 1, tiny_model)
    want = tree_hash(tiny_model)
    rng = random.Random(11)
    mid, ok = 0, 0
    for _ in tqdm(range(kills), desc="SIGKILL during save"):
        mid += kill_during_save(root, tiny_model, rng)
        store = ModelStore(root)
        vdir = store.project_dir(1) / "versions"
        listed = store.versions(1)
        good = all(tree_hash(store.version_dir(1, v["version"]) / "model") == want for v in listed)
        good &= store.serving_version(1) in {v["version"] for v in listed}
        store.cleanup_partial()
        ok += good and not any(p.name.startswith(".tmp-") for p in vdir.iterdir())
    return {"kills": kills, "landed_mid_save": mid, "recovered": ok}


def bad_input_phase(n_flask: int, be_url: str, auth, n_http: int, tiny_model: Path, answers) -> dict:
    from backend.app import create_app
    from backend.settings import Settings
    from tests.faults.conftest import seed_version
    from tests.faults.test_fuzz import HOSTILE_CONFIGS, ROUTES, TEXTS, _valid_bodies, rss_mb

    rng = random.Random(5)

    def rand_json(depth=0):
        k = rng.randrange(8 if depth < 3 else 5)
        if k == 0:
            return None
        if k == 1:
            return rng.random() < 0.5
        if k == 2:
            return rng.randrange(-2**70, 2**70)
        if k == 3:
            return rng.random() * 1e300
        if k == 4:
            return "".join(chr(rng.randrange(1, 0x2FFFF)) for _ in range(rng.randrange(30)))
        if k == 5:
            return [rand_json(depth + 1) for _ in range(rng.randrange(4))]
        if k == 6:
            return {str(rand_json(depth + 1))[:8]: rand_json(depth + 1) for _ in range(rng.randrange(4))}
        return rng.choice(_valid_bodies())

    def sample():
        r = rng.random()
        if r < 0.3:
            return "json", rand_json()
        if r < 0.6:
            key = rng.choice(["project", "tasks", "label_config", "schema", "action", "annotation", "kind", "version",
                              "config", "params", "extra_params"])
            return "json", {**rng.choice(_valid_bodies()), key: rand_json()}
        if r < 0.7:
            return "raw", bytes(rng.randrange(256) for _ in range(rng.randrange(300)))
        if r < 0.85:
            c = rng.choice(HOSTILE_CONFIGS)
            return "json", {"project": 1, "config": c, "schema": c, "label_config": c, "tasks": [{"data": {"text": "a"}}]}
        return "json", {**_valid_bodies()[0], "tasks": [{"id": 1, "data": {"text": rng.choice(TEXTS)}}]}

    root = Path(tempfile.mkdtemp(prefix="bench-fuzz-")) / "var"
    seed_version(root, 1, tiny_model)
    app = create_app(Settings.from_env({"MODEL_DIR": str(root), "LOG_LEVEL": "CRITICAL"}))
    client = app.test_client()
    five, examples = 0, []
    rss0 = rss_mb()
    for _ in tqdm(range(n_flask), desc="bad input (Flask)"):
        method, path = rng.choice(ROUTES)
        kind, body = sample()
        data = body if kind == "raw" else json.dumps(body)
        r = client.get(path) if method == "GET" else client.post(path, data=data, content_type="application/json")
        if r.status_code >= 500:
            five += 1
            examples.append(f"{method} {path} {str(data)[:300]!r} -> {r.status_code} {r.get_data(as_text=True)[:200]}")
    rss1 = rss_mb()
    app.extensions["lal"]["queue"].close()
    five_http = 0
    for _ in tqdm(range(n_http), desc="bad input (gunicorn)"):
        method, path = rng.choice([r for r in ROUTES if r[0] == "POST"])
        kind, body = sample()
        data = body if kind == "raw" else json.dumps(body)
        r = requests.post(be_url + path, data=data, auth=auth, timeout=60, headers={"Content-Type": "application/json"})
        answers.append(r.content)
        five_http += r.status_code >= 500
    return {"flask_tried": n_flask, "flask_5xx": five, "rss_mb_before": round(rss0), "rss_mb_after": round(rss1),
            "http_tried": n_http, "http_5xx": five_http, "5xx_examples": examples[:5]}


def probe_phase(work: Path, tiny_model: Path | None) -> dict:
    """The security probe's inputs against Flask and a fresh gunicorn (see the module docstring)."""
    import subprocess
    from urllib.parse import unquote

    from backend.app import create_app
    from devtools.ls_process import free_port
    from backend.settings import Settings
    from tests.conftest import NER_CONFIG, REPO, BackendProcess
    from tests.faults.conftest import seed_version
    from tests.faults.test_fuzz import PROBE_BODIES, PROBE_PATHS, ROUTES
    from tests.faults.test_security import _encodings

    posts = [r for r in ROUTES if r[0] == "POST"]
    root = work / "probe-flask" / "var"
    if tiny_model is not None:
        seed_version(root, 1, tiny_model)
    app = create_app(Settings.from_env({"MODEL_DIR": str(root), "LOG_LEVEL": "CRITICAL"}))
    client = app.test_client()
    flask = {"tried": 0, "5xx": 0, "max_answer_bytes": 0}
    examples: list[str] = []

    def count(where: dict, status: int, body: bytes, what: str) -> None:
        where["tried"] += 1
        where["max_answer_bytes"] = max(where["max_answer_bytes"], len(body))
        if status >= 500:
            where["5xx"] += 1
            examples.append(f"{what[:200]} -> {status} {body[:200]!r}")

    for _, path in tqdm(posts, desc="probe (Flask)"):
        for body in PROBE_BODIES:
            r = client.post(path, data=body, content_type="application/json")
            count(flask, r.status_code, r.get_data(), f"POST {path} {body[:60]!r}")
    for method, path in PROBE_PATHS:
        r = client.open(path, method=method, json={"version": "v1"} if method == "POST" else None)
        count(flask, r.status_code, r.get_data(), f"{method} {path[:60]}")
    app.extensions["lal"]["queue"].close()

    secret = SECRETS["WEBHOOK_SECRET"]
    runtime = work / "probe-xdg"
    runtime.mkdir(exist_ok=True)
    env = {"BASIC_AUTH_USER": "labelstudio", "BASIC_AUTH_PASS": SECRETS["BASIC_AUTH_PASS"], "WEBHOOK_SECRET": secret,
           "ACCESS_LOG": "true", "LOG_LEVEL": "DEBUG", "MAX_REQUEST_MB": "1", "XDG_RUNTIME_DIR": str(runtime),
           "OMP_NUM_THREADS": "1"}
    auth = ("labelstudio", SECRETS["BASIC_AUTH_PASS"])
    (work / "probe-http").mkdir(exist_ok=True)
    be = BackendProcess(work / "probe-http" / "var", env).start(timeout=120)
    http = {"tried": 0, "5xx": 0, "max_answer_bytes": 0}
    try:
        requests.post(f"{be.url}/setup", json={"project": "1.1700000000", "schema": NER_CONFIG}, auth=auth, timeout=30)
        for _, path in tqdm(posts, desc="probe (gunicorn)"):
            for body in PROBE_BODIES:
                r = requests.post(be.url + path, data=body.encode(), auth=auth, timeout=60,
                                  headers={"Content-Type": "application/json"})
                count(http, r.status_code, r.content, f"POST {path} {body[:60]!r}")
        for method, path in PROBE_PATHS:
            r = requests.request(method, be.url + path, auth=auth, timeout=60,
                                 json={"version": "v1"} if method == "POST" else None)
            count(http, r.status_code, r.content, f"{method} {path[:60]}")

        def chunks(n_mb: int):
            for _ in range(n_mb * 16):
                yield b" " * 65536
            yield b'{"config": "<View/>"}'

        chunked = [requests.post(f"{be.url}/validate", data=chunks(n), auth=auth, timeout=60,
                                 headers={"Content-Type": "application/json"}).status_code for n in (2, 5)]
        options = {(r.status_code, r.headers.get("Allow"))
                   for p in ("/setup", "/predict", "/versions/1/pin", "/nope", "/a/b", f"/{secret}/webhook")
                   for r in [requests.options(be.url + p, timeout=10)]}
        script_name = [requests.get(be.url + p, headers={"SCRIPT_NAME": "/x"}, auth=auth, timeout=10).status_code
                       for p in ("/health", "/versions", "/jobs")]
        spellings = _encodings(secret)
        for sp in spellings:
            requests.post(f"{be.url}/{sp}/webhook", json={"action": "PROJECT_UPDATED", "project": 1}, timeout=10)
            requests.get(f"{be.url}/versions", params={"t": sp}, auth=auth, timeout=10)
        health_anon = requests.get(f"{be.url}/health", timeout=10).json()
    finally:
        be.stop()
    decoded = be.log_path.read_text(errors="replace")
    for _ in range(3):
        decoded = unquote(decoded)
    leaked = sum(v.lower() in ln.lower() for v in SECRETS.values() for ln in decoded.splitlines())
    half = subprocess.run([sys.executable, "-m", "gunicorn", "-c", str(REPO / "backend" / "gunicorn.conf.py"),
                           "backend.wsgi:app"], cwd=work, capture_output=True, text=True, timeout=120,
                          env={**{k: v for k, v in os.environ.items() if not k.startswith(("BASIC_AUTH", "WEBHOOK"))},
                               "MODEL_DIR": str(work / "probe-half"), "PORT": str(free_port()), "HOST": "127.0.0.1",
                               "BASIC_AUTH_USER": "labelstudio"})
    half_msg = next((ln.strip() for ln in (half.stdout + half.stderr).splitlines() if "BASIC_AUTH_PASS" in ln), "")
    return {"flask": flask, "http": http, "chunked_over_limit_status": chunked, "options_distinct_answers": len(options),
            "script_name_status": script_name, "secret_spellings_sent": len(spellings) * 2,
            "secret_lines_in_decoded_log": leaked, "health_without_credentials": health_anon,
            "control_socket_files": len(list(runtime.iterdir())), "half_auth_exit": half.returncode,
            "half_auth_message": half_msg[-200:], "5xx_examples": examples[:5]}


def fairness_phase(start_backend, fake, auth, prefix) -> dict:
    from tests.faults.outage import outage

    be = start_backend(extra={"JOB_BACKOFF_S": "120"})
    return outage(be.url, fake, range(101, 131), 199, auth=auth, prefix=prefix, timeout=1800)


def _mutate(raw: bytes, rng: random.Random) -> bytes:
    """One random corruption of a data file."""
    pos = rng.randrange(max(1, len(raw)))
    op = rng.randrange(7)
    if op == 0:
        return raw[:pos] + b'"' + raw[pos:]  # a stray quote
    if op == 1:
        return raw[:pos] + b"\t" + raw[pos:]  # a stray tab
    if op == 2:
        return raw[:pos] + raw[pos + rng.randint(1, 40):]  # bytes lost
    if op == 3:
        return raw[:pos]  # truncated
    if op == 4:
        return raw[:pos] + bytes(rng.randrange(256) for _ in range(rng.randint(1, 8))) + raw[pos:]  # noise
    if op == 5:
        lines = raw.split(b"\n")
        i = rng.randrange(len(lines))
        return b"\n".join(lines[:i] + [lines[i], lines[i]] + lines[i + 1:])  # a duplicated line
    return raw[:pos] + b" X-FOO " + raw[pos:]  # a foreign token


def readers_phase(work: Path, n: int) -> dict:
    import csv
    import re

    from model.conll import DataFileError, read_conll, read_news_tsv
    from model.llm.fewshot import load_examples
    from tests.conftest import SHARED

    news = SHARED / "data" / "masakhanews"
    counts, unquoted = {}, {}
    for f in sorted(news.glob("*/*.tsv")):
        key = f"{f.parent.name}/{f.stem}"
        counts[key] = len(read_news_tsv(f)[0])
        with open(f, encoding="utf-8", newline="") as fh:  # baseline: the reader before issue 19
            unquoted[key] = sum(1 for _ in csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))
    d = work / "readers"
    (d / "news").mkdir(parents=True)
    (d / "news" / "labels.txt").write_bytes((news / "yor" / "labels.txt").read_bytes())
    tsv_lines = (news / "yor" / "train.tsv").read_bytes().split(b"\n")
    sources = {"tsv": b"\n".join(tsv_lines[:1] + tsv_lines[1300:1330]) + b"\n",
               "conll": b"".join((SHARED / "data/masakhaner2/hau/train.txt").read_bytes().splitlines(True)[:300])}
    shots = [json.dumps({"tokens": toks, "tags": tags}, ensure_ascii=False)
             for toks, tags in read_conll(SHARED / "data/masakhaner2/hau/dev.txt")[:20]]
    sources["jsonl"] = ("\n".join(shots) + "\n").encode()
    readers = {"tsv": (d / "news" / "train.tsv", read_news_tsv), "conll": (d / "train.conll", read_conll),
               "jsonl": (d / "shots.jsonl", load_examples)}
    rng = random.Random(0)
    out = {"tried": 0, "refused_with_line": 0, "refused_without_line": 0, "read": 0, "other_errors": 0,
           "other_examples": []}
    for i in range(n):
        kind = ("tsv", "conll", "jsonl")[i % 3]
        path, reader = readers[kind]
        data = sources[kind]
        for _ in range(rng.randint(1, 3)):
            data = _mutate(data, rng)
        path.write_bytes(data)
        out["tried"] += 1
        try:
            reader(path)
            out["read"] += 1
        except DataFileError as e:
            out["refused_with_line" if re.match(rf"{re.escape(str(path))}:\d+: ", str(e)) else
                "refused_without_line"] += 1
        except Exception as e:  # noqa: BLE001 - counted: any other failure is a reader bug
            out["other_errors"] += 1
            out["other_examples"].append(f"{kind}: {type(e).__name__}: {str(e)[:200]}")
    out["other_examples"] = out["other_examples"][:5]
    return {"articles": counts, "articles_unquoted_reader": unquoted, "mutants": out}


def run(args) -> dict:
    import torch

    from tests.conftest import BackendProcess
    from devtools.fakels import FakeLabelStudio
    from tests.faults.harness import FAST_TRAINING

    torch.set_num_threads(1)
    out = {"machine": machine(), "args": vars(args)}
    work = Path(tempfile.mkdtemp(prefix="bench-faults-"))
    fake = FakeLabelStudio(token=SECRETS["LABEL_STUDIO_API_KEY"]).start()
    env = {**FAST_TRAINING, **SECRETS, "LABEL_STUDIO_URL": fake.url, "BASIC_AUTH_USER": "labelstudio",
           "PREDICT_SOURCE": "model", "LOG_LEVEL": "DEBUG", "ACCESS_LOG": "true", "WRITE_PREDICTIONS": "true"}
    auth = ("labelstudio", SECRETS["BASIC_AUTH_PASS"])
    prefix = "/" + SECRETS["WEBHOOK_SECRET"]
    procs = []

    def start_backend(port=None, extra=None):
        p = BackendProcess(work / ("var" if extra is None else f"var-{len(procs)}"), {**env, **(extra or {})},
                           port).start(timeout=120)
        procs.append(p)
        return p

    answers: list[bytes] = []
    phases = set(args.phases.split(","))
    try:
        be = start_backend() if phases & {"storm", "crash_fit", "bad_input"} else None
        if "storm" in phases:
            print(f"storm: {args.events} events from {args.threads} threads ...", flush=True)
            out["storm"] = storm_phase(args, be, fake, auth, prefix, answers)
        if "crash_fit" in phases:
            print("crash during fit ...", flush=True)
            out["crash_fit"], be = crash_fit_phase(be, fake, auth, start_backend)
        tiny = _train_tiny(work) if phases & {"crash_save", "bad_input", "probe"} else None
        if "crash_save" in phases:
            out["crash_save"] = crash_save_phase(args.kills, tiny)
        if "bad_input" in phases:
            out["bad_input"] = bad_input_phase(args.fuzz, be.url, auth, args.fuzz_http, tiny, answers)
        if "probe" in phases:
            print("security probe inputs ...", flush=True)
            out["probe"] = probe_phase(work, tiny)
        if "fairness" in phases:
            print("Label Studio down for 30 projects ...", flush=True)
            out["fairness"] = fairness_phase(start_backend, fake, auth, prefix)
        if "readers" in phases:
            print(f"data readers: {args.mutants} mutated files ...", flush=True)
            out["readers"] = readers_phase(work, args.mutants)
    finally:
        for p in procs:
            p.stop(signal.SIGKILL)
        fake.stop()
    written = [p for p in [*(work / "var").rglob("*"), *[p.log_path for p in procs]] if p.is_file()]
    blobs = [p.read_bytes() for p in written] + answers
    out["secrets"] = {"files_searched": len(written), "responses_searched": len(answers),
                      "found": sum(s.encode() in b for s in SECRETS.values() for b in blobs)}
    out["machine"]["loadavg_end"] = os.getloadavg()
    return out


def _train_tiny(work: Path) -> Path:
    from backend.label_config import parse_label_config
    from model.local import LocalModel
    from model.types import Example, Span
    from tests.conftest import NER_CONFIG
    from tests.faults.harness import hausa

    ex = [Example(text=t, spans=[Span(r["value"]["start"], r["value"]["end"], r["value"]["labels"][0]) for r in regs],
                  choices=[], task_id=i + 1) for i, (t, regs) in enumerate(hausa(30))]
    d = work / "tiny-model"
    LocalModel(parse_label_config(NER_CONFIG), ner_params={"max_epochs": 1}).fit(ex).save(d)
    return d


def report(o: dict) -> str:
    m, sec = o["machine"], o["secrets"]
    lines = [
        "# Fault suite figures (`python -m benchmarks.bench_faults`)", "",
        f"Machine: {m['nproc']} CPU cores ({m['cpu']}); load average {m['loadavg_start'][0]:.1f} at the start, "
        f"{m['loadavg_end'][0]:.1f} at the end (4 other engineers were using the same 2 cores at the time). "
        "Backend: gunicorn via `python -m backend serve` (1 worker, 8 threads, in-process job queue), basic auth on, "
        "webhooks under the secret prefix, debug logging and the access log on; Label Studio's API played by "
        f"`devtools/fakels.py`. Phases run: {o['args']['phases']}.", "",
        "| fault | figure |", "|---|---|",
    ]
    if all(k in o for k in ("storm", "crash_fit", "crash_save")):
        lines += _report_classic(o)
    if "bad_input" in o:
        b = o["bad_input"]
        lines += [f"| bad inputs tried / 5xx (Flask test client) | {b['flask_tried']} / {b['flask_5xx']} (RSS "
                  f"{b['rss_mb_before']} -> {b['rss_mb_after']} MB) |",
                  f"| bad inputs tried / 5xx (real gunicorn) | {b['http_tried']} / {b['http_5xx']} |"]
    if "probe" in o:
        p = o["probe"]
        lines += [
            f"| probe inputs tried / 5xx / largest answer (Flask test client) | {p['flask']['tried']} / "
            f"{p['flask']['5xx']} / {p['flask']['max_answer_bytes']} bytes |",
            f"| probe inputs tried / 5xx / largest answer (real gunicorn, MAX_REQUEST_MB=1) | {p['http']['tried']} / "
            f"{p['http']['5xx']} / {p['http']['max_answer_bytes']} bytes |",
            f"| chunked bodies of 2 and 5 MB over the 1 MB limit: status | {p['chunked_over_limit_status']} |",
            f"| OPTIONS on 6 paths (real, unknown, under the secret): distinct answers | {p['options_distinct_answers']} |",
            f"| client `SCRIPT_NAME` header on 3 routes: status | {p['script_name_status']} |",
            f"| webhook secret spellings sent (percent-encoded, re-cased, encoded twice) / log lines holding a secret "
            f"after decoding | {p['secret_spellings_sent']} / {p['secret_lines_in_decoded_log']} |",
            f"| `/health` without credentials | `{json.dumps(p['health_without_credentials'])}` |",
            f"| control socket files opened | {p['control_socket_files']} |",
            f"| gunicorn started with BASIC_AUTH_USER only: exit / message | {p['half_auth_exit']} / "
            f"`{p['half_auth_message']}` |",
        ]
    if "fairness" in o:
        f = o["fairness"]
        lines += [
            f"| Label Studio down for {f['failing_projects']} projects: a real project's webhook -> its training "
            f"starts (longest failing job) | {f['healthy_wait_s']} s ({f['failing_job_s_max']} s); it "
            f"{f['healthy_status']} |",
            f"| - failed jobs / jobs held by the back-off / `/jobs` total (page of {f['page_size']}) | "
            f"{f['failed_jobs']} / {f['held_by_back_off']} / {f['jobs_listed_total']} |",
        ]
    if "readers" in o:
        r, m = o["readers"], o["readers"]["mutants"]
        arts = ", ".join(f"{k} {v}" for k, v in r["articles"].items())
        diff = {k: (v, r["articles_unquoted_reader"][k]) for k, v in r["articles"].items()
                if v != r["articles_unquoted_reader"][k]}
        lines += [
            f"| MasakhaNEWS articles read (every split) | {arts} |",
            f"| - where the old unquoted reader differed (now / before) | "
            f"{', '.join(f'{k} {a} / {b}' for k, (a, b) in diff.items()) or 'nowhere'} |",
            f"| mutated TSV / CoNLL / JSONL files: tried / refused naming file:line / refused without a line / read "
            f"/ other errors | {m['tried']} / {m['refused_with_line']} / {m['refused_without_line']} / {m['read']} / "
            f"{m['other_errors']} |",
        ]
        if m["other_examples"]:
            lines += [f"| - other reader errors (first) | {'; '.join(m['other_examples'])} |"]
    lines.append(f"| secrets found (in {sec['files_searched']} files + {sec['responses_searched']} responses) | "
                 f"{sec['found']} |")
    examples = o.get("bad_input", {}).get("5xx_examples", []) + o.get("probe", {}).get("5xx_examples", [])
    if examples:
        lines += ["", "5xx answers (first few):", ""] + [f"- `{e[:300]}`" for e in examples]
    return "\n".join(lines) + "\n"


def _report_classic(o: dict) -> list[str]:
    s, cf, cs = o["storm"], o["crash_fit"], o["crash_save"]
    crashes = 1 + cs["kills"]
    recovered = int(cf["recovered"]) + cs["recovered"]
    return [
        f"| webhook storm: events sent / answered 2xx / answered in < 1 s | {s['sent']} / {s['answered_2xx']} / {s['in_time']} |",
        f"| storm: webhook p50 / p95 / max (baseline: sequential, no training, p50) | {s['p50_ms']} / {s['p95_ms']} / "
        f"{s['max_ms']} ms (baseline {s['baseline_sequential_p50_ms']} ms) |",
        f"| storm: trainings run (failed) / most jobs active at once | {s['trainings_run']} ({s['trainings_failed']}) / "
        f"{s['max_jobs_active']} |",
        f"| storm: annotations / in the final model ({s['final_version']}) / lost | {s['annotations']} / "
        f"{s['final_n_examples']} / {s['lost']} |",
        f"| crashes injected / recovered | {crashes} / {recovered} |",
        f"| - SIGKILL of the backend inside `fit` | killed while running: {cf['killed_in_fit']}; old version answered "
        f"first /predict after restart: {cf['old_version_served_after_restart']} ({cf['first_predict_after_restart_s']} s); "
        f"job retried and trained on every annotation: {cf['retried_and_trained_on_all']} |",
        f"| - SIGKILL of a `save_version` loop | {cs['kills']} kills, {cs['landed_mid_save']} inside a save, "
        f"{cs['recovered']} left a consistent store (no partial version listed) |",
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.bench_faults", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=1000, help="webhook events in the storm")
    ap.add_argument("--threads", type=int, default=20, help="concurrent senders in the storm")
    ap.add_argument("--tasks", type=int, default=150, help="annotated tasks the events cycle over")
    ap.add_argument("--kills", type=int, default=20, help="SIGKILLs of the save_version loop")
    ap.add_argument("--fuzz", type=int, default=3000, help="bad inputs through Flask's test client")
    ap.add_argument("--fuzz-http", type=int, default=300, help="bad inputs through the real gunicorn")
    ap.add_argument("--mutants", type=int, default=600, help="mutated data files through the readers")
    ap.add_argument("--phases", default=",".join(PHASES), help=f"comma-separated subset of {', '.join(PHASES)}")
    ap.add_argument("--json", help="default benchmarks/out/faults[_<phases>].json")
    ap.add_argument("--results", help="default benchmarks/results/faults.md; a subset of phases writes "
                    "faults_<phases>.md beside it, so the full table is never replaced by a partial run")
    ap.add_argument("--from-json", help="print the table of a saved run (its --json file) instead of running")
    args = ap.parse_args(argv)
    if args.from_json:
        print(report(json.loads(Path(args.from_json).read_text())))
        return 0
    unknown = set(args.phases.split(",")) - set(PHASES)
    if unknown:
        ap.error(f"unknown phase(s) {', '.join(sorted(unknown))}: expected {', '.join(PHASES)}")
    suffix = "" if set(args.phases.split(",")) == set(PHASES) else "_" + "_".join(args.phases.split(","))
    args.json = args.json or f"benchmarks/out/faults{suffix}.json"
    args.results = args.results or f"benchmarks/results/faults{suffix}.md"
    out = run(args)
    md = report(out)
    save_results(out, args.json, md, args.results)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
