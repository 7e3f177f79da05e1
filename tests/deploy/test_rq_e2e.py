"""End to end with the real Label Studio and two real RQ workers: annotations in Label Studio ->
webhooks -> RQ jobs -> the workers train (real ``run_job``) and write predictions back."""
from __future__ import annotations

import time

import pytest
import requests
from label_studio_sdk.client import LabelStudio

from devtools.demo import NER_CONFIG, SAMPLE, _result
from model.conll import read_conll
from model.tokenize import bio_to_spans, join_tokens

pytestmark = [pytest.mark.e2e, pytest.mark.redis, pytest.mark.slow]


def test_label_studio_webhooks_train_on_rq_workers(label_studio, redis_url, rq_workers, backend_process, tmp_path):
    model_dir = tmp_path / "var"
    env = {"LABEL_STUDIO_URL": label_studio.url, "LABEL_STUDIO_API_KEY": label_studio.token, "NER_MAX_EPOCHS": "4"}
    workers = rq_workers(model_dir, env)
    workers.start("w1")
    workers.start("w2")
    backend = backend_process({**env, "REDIS_URL": redis_url}, model_dir=model_dir)
    ls = LabelStudio(base_url=label_studio.url, api_key=label_studio.token)
    sentences = []
    for toks, tags in read_conll(SAMPLE)[:16]:
        text, tk = join_tokens(toks)
        sentences.append((text, bio_to_spans(tk, tags)))
    projects = []
    for i in range(2):
        p = ls.projects.create(title=f"rq e2e {i}", label_config=NER_CONFIG).id
        ls.projects.import_tasks(id=p, request=[{"text": t} for t, _ in sentences])
        ls.ml.create(url=backend.url, project=p, title="LLM-AL backend", is_interactive=False)
        projects.append(p)
    workers.wait_registered(2)
    for p in projects:  # humans annotate 8 tasks each: every annotation fires a webhook
        tasks = [t.model_dump() for t in ls.tasks.list(project=p, fields="all", page_size=100)]
        gold = dict(sentences)
        for t in tasks[:8]:
            ls.annotations.create(id=t["id"], result=_result(t["data"]["text"], gold[t["data"]["text"]]))

    def settled():
        jobs = requests.get(f"{backend.url}/jobs", timeout=10).json()["jobs"]
        assert not [j for j in jobs if j["status"] == "failed"], jobs
        if not jobs or any(j["status"] in ("queued", "running") for j in jobs):
            return None
        vs = requests.get(f"{backend.url}/versions", timeout=10).json()["projects"]
        return jobs if all(vs.get(str(p), {}).get("serving") for p in projects) else None

    end, jobs = time.monotonic() + 240, None
    while time.monotonic() < end and not (jobs := settled()):
        time.sleep(1)
    assert jobs, "training did not finish on the workers"
    assert {j["worker"] for j in jobs} <= {"w1", "w2"} and {j["backend"] for j in jobs} == {"rq"}
    versions = requests.get(f"{backend.url}/versions", timeout=10).json()["projects"]
    for p in projects:
        serving = versions[str(p)]["serving"]["version"]
        meta = versions[str(p)]["versions"][-1]
        assert meta["version"] == serving and meta["n_examples"] == 8  # the last run saw every annotation
        # the worker wrote scored predictions of that version for the 8 unlabelled tasks
        assert ls.projects.get(id=p).model_version == serving
        unlabeled = [t.model_dump() for t in ls.tasks.list(project=p, fields="all", page_size=100)
                     if not t.annotations]
        assert len(unlabeled) == 8
        assert all(any(pr["model_version"] == serving for pr in t["predictions"]) for t in unlabeled)
