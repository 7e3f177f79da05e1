"""End to end with the real Label Studio 1.23.2 as the client: connect, predict, annotate, retrain
from the webhook and from Start Training, queue ordering, restart."""
from __future__ import annotations

import pytest
import requests
from label_studio_sdk.client import LabelStudio

from tests.conftest import NER_CONFIG, NEWS_CONFIG
from tests.e2e.helpers import (backend_idle, choice_result, ner_result, ner_tasks, news_tasks, task_dicts,
                               wait_for)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture
def ls(label_studio):
    return LabelStudio(base_url=label_studio.url, api_key=label_studio.token)


@pytest.fixture
def backend(label_studio, backend_process):
    return backend_process({"LABEL_STUDIO_URL": label_studio.url, "LABEL_STUDIO_API_KEY": label_studio.token,
                            "NER_MAX_EPOCHS": "8"})


def _retrieve_predictions(ls, project: int, task_ids: list[int]) -> None:
    ls.actions.create(id="retrieve_tasks_predictions", project=project,
                      selected_items={"all": False, "included": task_ids})


def test_ner_project_end_to_end(ls, label_studio, backend, backend_process):
    project = ls.projects.create(title="hau NER", label_config=NER_CONFIG).id
    tasks, gold = ner_tasks(50)
    ls.projects.import_tasks(id=project, request=tasks)
    ml = ls.ml.create(url=backend.url, project=project, title="LLM-AL backend", is_interactive=False)
    assert ml.state in ("CO", "CONNECTED"), ml.state
    ids = [t["id"] for t in task_dicts(ls, project)]

    # before any model: Retrieve Predictions stores nothing (so LS asks again later)
    _retrieve_predictions(ls, project, ids[40:45])
    assert all(not t["predictions"] for t in task_dicts(ls, project))

    # humans annotate 20 tasks: each ANNOTATION_CREATED webhook queues (coalesced) training
    by_id = {t["id"]: t for t in task_dicts(ls, project)}
    for tid, spans in zip(ids[:20], gold[:20]):
        ls.annotations.create(id=tid, result=ner_result(by_id[tid]["data"]["text"], spans))
    v_first = wait_for(lambda: backend_idle(backend.url, project, 1), 180, "training from webhooks")
    versions = requests.get(f"{backend.url}/versions", params={"project": project}).json()
    assert versions["versions"][-1] == v_first
    assert versions["projects"][str(project)]["versions"][-1]["n_examples"] == 20

    # the writer scored every unlabelled task with the new version and set the project's version
    assert ls.projects.get(id=project).model_version == v_first
    unlabeled = [t for t in task_dicts(ls, project) if not t["annotations"]]
    assert len(unlabeled) == 30
    scored = {t["id"]: p["score"] for t in unlabeled for p in t["predictions"] if p["model_version"] == v_first}
    assert len(scored) == 30 and all(0.0 <= s <= 1.0 for s in scored.values())

    # Start Training (button) -> START_TRAINING webhook -> a new version
    ls.ml.train(id=ml.id)
    v_second = wait_for(lambda: backend_idle(backend.url, project, int(v_first[1:]) + 1), 180, "START_TRAINING")
    assert ls.projects.get(id=project).model_version == v_second

    # Retrieve Predictions -> /predict with the serving model: exact offsets, new model_version
    _retrieve_predictions(ls, project, ids[45:50])
    fresh = [p for t in task_dicts(ls, project) if t["id"] in ids[45:50] for p in t["predictions"]
             if p["model_version"] == v_second]
    assert len(fresh) >= 5
    for t in task_dicts(ls, project):
        for p in t["predictions"]:
            for r in p["result"]:
                v = r["value"]
                assert t["data"]["text"][v["start"]:v["end"]] == v["text"]
                assert v["labels"][0] in ("PER", "ORG", "LOC", "DATE")

    # "Uncertainty sampling" serves the lowest-scored task of the current version first
    ls.projects.update(id=project, sampling="Uncertainty sampling")
    headers = {"Authorization": f"Token {label_studio.token}"}
    nxt = requests.get(f"{label_studio.url}/api/projects/{project}/next", headers=headers, timeout=30).json()
    current = {t["id"]: min(p["score"] for p in t["predictions"] if p["model_version"] == v_second)
               for t in task_dicts(ls, project) if not t["annotations"]
               and any(p["model_version"] == v_second for p in t["predictions"])}
    assert nxt["id"] == min(current, key=current.get)

    # restart: the same version serves afterwards
    port, model_dir = backend.port, backend.model_dir
    backend.stop()
    again = backend_process({"LABEL_STUDIO_URL": label_studio.url, "LABEL_STUDIO_API_KEY": label_studio.token},
                            model_dir=model_dir, port=port)
    setup = requests.post(f"{again.url}/setup", json={"project": f"{project}.1", "schema": NER_CONFIG}).json()
    assert setup["model_version"] == v_second
    pred = requests.post(f"{again.url}/predict", json={"project": f"{project}.1", "label_config": NER_CONFIG,
                                                        "tasks": [{"id": 1, "data": {"text": tasks[0]["text"]}}]})
    assert pred.json()["results"][0]["model_version"] == v_second


def test_classification_project_end_to_end(ls, backend):
    project = ls.projects.create(title="yor news", label_config=NEWS_CONFIG).id
    tasks, labels = news_tasks(40)
    ls.projects.import_tasks(id=project, request=tasks)
    ls.ml.create(url=backend.url, project=project, title="LLM-AL backend", is_interactive=False)
    ids = [t["id"] for t in task_dicts(ls, project)]
    for tid, label in zip(ids[:20], labels[:20]):
        ls.annotations.create(id=tid, result=choice_result(label))
    version = wait_for(lambda: backend_idle(backend.url, project, 1), 180, "classifier training")
    preds = [p for t in task_dicts(ls, project) if not t["annotations"] for p in t["predictions"]
             if p["model_version"] == version]
    assert len(preds) == 20
    for p in preds:
        (region,) = p["result"]
        assert region["type"] == "choices" and len(region["value"]["choices"]) == 1
        assert 0.0 <= p["score"] <= 1.0
