"""Helpers for driving the real Label Studio in end-to-end tests."""
from __future__ import annotations

import time

import requests

from model.conll import read_conll, read_news_tsv
from model.tokenize import bio_to_spans, join_tokens
from tests.conftest import shared_path


def ner_tasks(n: int, split: str = "dev") -> tuple[list[dict], list[list]]:
    """``n`` Hausa sentences as Label Studio tasks, with their gold spans."""
    tasks, gold = [], []
    for toks, tags in read_conll(shared_path("data", "masakhaner2", "hau", f"{split}.txt"))[:n]:
        text, tk = join_tokens(toks)
        tasks.append({"text": text})
        gold.append(bio_to_spans(tk, tags))
    return tasks, gold


def news_tasks(n: int) -> tuple[list[dict], list[str]]:
    texts, labels = read_news_tsv(shared_path("data", "masakhanews", "yor", "train.tsv"))
    return [{"text": t[:1500]} for t in texts[:n]], labels[:n]


def ner_result(text: str, spans) -> list[dict]:
    return [{"from_name": "label", "to_name": "text", "type": "labels",
             "value": {"start": s.start, "end": s.end, "text": text[s.start:s.end], "labels": [s.label]}}
            for s in spans]


def choice_result(label: str) -> list[dict]:
    return [{"from_name": "topic", "to_name": "text", "type": "choices", "value": {"choices": [label]}}]


def wait_for(predicate, timeout: float, what: str, interval: float = 0.5):
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last: {last!r}")


def backend_idle(url: str, project: int, min_version: int):
    """The project's serving version once it reaches ``v<min_version>`` and no job is active."""
    jobs = requests.get(f"{url}/jobs", params={"project": project}, timeout=5).json()["jobs"]
    failed = [j for j in jobs if j["status"] == "failed"]
    assert not failed, failed
    if any(j["status"] in ("queued", "running") for j in jobs):
        return None
    serving = requests.get(f"{url}/versions", params={"project": project}, timeout=5).json()
    version = serving["projects"].get(str(project), {}).get("serving", {}).get("version")
    return version if version and int(version[1:]) >= min_version else None


def task_dicts(ls, project: int) -> list[dict]:
    return [t.model_dump() for t in ls.tasks.list(project=project, fields="all", page_size=500)]
