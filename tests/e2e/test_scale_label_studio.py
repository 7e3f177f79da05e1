"""Label Studio at scale, against the real Label Studio 1.23.2 (PostgreSQL, and SQLite for the
queue): bounded predictions over many retrains, the uncertainty queue served lowest score first
(also after a rollback), and the incremental annotation set equal to a full re-read."""
from __future__ import annotations

import pytest
import requests
from label_studio_sdk.client import LabelStudio

from tests.conftest import NER_CONFIG
from tests.e2e.helpers import ner_result, ner_tasks

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _client(ls):
    return LabelStudio(base_url=ls.url, api_key=ls.token)


def _backend(make_settings, ls, **env):
    from backend.ml import MLBackend

    settings = make_settings(LABEL_STUDIO_URL=ls.url, LABEL_STUDIO_API_KEY=ls.token, NER_MAX_EPOCHS="2",
                             **env)
    return MLBackend(settings)


def _project(sdk, backend, n_tasks: int) -> tuple[int, list[dict], list]:
    """A NER project of ``n_tasks`` Hausa sentences (repeated with a suffix past the dev set),
    known to the backend as /setup would make it."""
    base, gold = ner_tasks(min(n_tasks, 1000))
    tasks = [{"text": base[i % len(base)]["text"] + ("" if i < len(base) else f" ({i // len(base)})")}
             for i in range(n_tasks)]
    pid = sdk.projects.create(title=f"scale {n_tasks}", label_config=NER_CONFIG).id
    sdk.projects.import_tasks(id=pid, request=tasks)
    backend.setup(pid, NER_CONFIG, None)
    listed = _all_tasks(backend, pid)
    return pid, listed, [gold[i % len(gold)] for i in range(n_tasks)]


def _ls_client(backend):
    from backend.ls_client import LabelStudioClient

    return LabelStudioClient(backend.settings.label_studio_url, backend.settings.label_studio_api_key)


def _all_tasks(backend, pid: int) -> list[dict]:
    return sorted(_ls_client(backend).iter_tasks(pid), key=lambda t: t["id"])


def _annotate(sdk, task: dict, spans, **extra) -> int:
    return sdk.annotations.create(id=task["id"], result=ner_result(task["data"]["text"], spans), **extra).id


def _annotate_raw(ls, task: dict, spans, **extra) -> dict:
    """POST an annotation with fields the SDK does not take (``parent_prediction``)."""
    r = requests.post(f"{ls.url}/api/tasks/{task['id']}/annotations/", headers={"Authorization": f"Token {ls.token}"},
                      json={"result": ner_result(task["data"]["text"], spans), **extra}, timeout=60)
    assert r.status_code == 201, r.text
    return r.json()


def _next_task(ls, pid: int) -> dict:
    r = requests.get(f"{ls.url}/api/projects/{pid}/next", headers={"Authorization": f"Token {ls.token}"}, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()


def _assert_queue_lowest_first(ls, backend, pid: int, version: str) -> dict:
    """Label Studio serves the lowest current score first, within the cluster its annotator solved
    least when predictions carry clusters (projects/functions/next_task.py). Returns the served
    task: Label Studio locks it for the user and serves it again until it is annotated."""
    from collections import Counter

    tasks = _all_tasks(backend, pid)
    solved = Counter(max((p["cluster"] for p in t["predictions"] if p.get("cluster") is not None), default=None)
                     for t in tasks if t["annotations"])
    current = {}
    for t in tasks:
        mine = [p for p in t["predictions"] if p["model_version"] == version]
        if not t["annotations"] and mine:
            p = min(mine, key=lambda p: p["score"])
            current[t["id"]] = (solved.get(p.get("cluster"), 0) if p.get("cluster") is not None else 0, p["score"])
    assert current, "no task carries a prediction of the project's model_version"
    task = _next_task(ls, pid)
    served, best = task["id"], min(current, key=current.get)
    assert served == best, (served, current.get(served), best, current[best], dict(solved))
    return task


def test_predictions_stay_bounded_over_many_retrains(label_studio_pg, make_settings):
    """2,000 tasks, LLM pre-annotations on 300 of them (50 re-annotated by the LLM later), a
    foreign model's predictions on 20, an annotation created from a prediction: after six
    retrains the project holds about (queue + LLM pre-annotations + what annotated tasks carry),
    never pool x trainings; nothing that must stay was deleted."""
    from backend.ls_json import llm_model_version
    from backend.superseded import record_llm_version

    ls = label_studio_pg
    sdk = _client(ls)
    queue_size = 40
    backend = _backend(make_settings, ls, RESCORE_CANDIDATES="400", QUEUE_SIZE=str(queue_size),
                       FULL_SYNC_EVERY="4")
    pid, tasks, gold = _project(sdk, backend, 2000)
    client = _ls_client(backend)
    llm_v = llm_model_version("fake-gpt")
    record_llm_version(backend.store, pid, llm_v)  # as the prelabel job does
    llm_tasks = tasks[1000:1300]
    llm_pred = lambda t, score: {"task": t["id"], "model_version": llm_v, "score": score,  # noqa: E731
                                 "result": ner_result(t["data"]["text"], [])}
    client.import_predictions(pid, [llm_pred(t, 0.5) for t in llm_tasks])
    client.import_predictions(pid, [llm_pred(t, 0.9) for t in llm_tasks[:50]])  # re-annotated: 50 superseded
    foreign = [{"task": t["id"], "model_version": "someone-else-1", "score": 0.3, "result": []} for t in tasks[1900:1920]]
    client.import_predictions(pid, foreign)

    sdk.projects.update(id=pid, sampling="Uncertainty sampling")
    index = {t["id"]: i for i, t in enumerate(tasks)}
    labelled: list[int] = []
    parent_id = None
    for round_ in range(6):
        for _ in range(8):  # 8 annotations between retrains, each on the task Label Studio serves next
            nxt = _next_task(ls, pid)
            if round_ == 3 and parent_id is None:  # the annotator accepts the served pre-annotation
                parent_id = next(p["id"] for p in nxt["predictions"] if p["model_version"] == backend.model_version(pid))
                _annotate_raw(ls, nxt, [], parent_prediction=parent_id)
            else:
                _annotate(sdk, nxt, gold[index[nxt["id"]]])
            labelled.append(nxt["id"])
        out = backend.fit(pid, "ANNOTATION_CREATED")
        assert out["status"] == "trained", out
        assert out["written"]["tasks"] == queue_size and out["written"]["delete_failed"] == 0, out["written"]
        version = out["version"]
        now = _all_tasks(backend, pid)
        unlabelled = [t for t in now if not t["annotations"]]
        # every unlabelled task carries at most: one current prediction, its newest LLM one, foreign ones
        for t in unlabelled:
            mine = [p for p in t["predictions"] if p["model_version"].startswith("v")]
            assert all(p["model_version"] == version for p in mine) and len(mine) <= 1, (t["id"], mine)
        assert sum(1 for t in unlabelled for p in t["predictions"] if p["model_version"] == version) == queue_size
        total = sum(len(t["predictions"]) for t in now)
        on_annotated = sum(len(t["predictions"]) for t in now if t["annotations"])
        assert total <= queue_size + len(llm_tasks) + 50 + len(foreign) + on_annotated
        assert total <= len(tasks) + len(llm_tasks)  # the bound, by a wide margin

    by_id = {t["id"]: t for t in _all_tasks(backend, pid)}
    # the sweep (every 4th write) removed the superseded LLM pre-annotations, the newest stayed
    for t in llm_tasks:
        if t["id"] not in labelled:
            llm = [p for p in by_id[t["id"]]["predictions"] if p["model_version"] == llm_v]
            assert len(llm) == 1 and llm[0]["score"] == (0.9 if t in llm_tasks[:50] else 0.5)
    # foreign model versions and the prediction an annotation was created from are untouched
    assert all(any(p["model_version"] == "someone-else-1" for p in by_id[f["task"]]["predictions"]) for f in foreign)
    assert any(p["id"] == parent_id for t in by_id.values() for p in t["predictions"])
    # the tasks annotated from the queue kept the predictions their annotators saw
    assert all(any(p["model_version"].startswith("v") for p in by_id[tid]["predictions"]) for tid in labelled[8:])
    # and Label Studio's queue serves the lowest score of the current version first
    _assert_queue_lowest_first(ls, backend, pid, version)


@pytest.mark.parametrize("strategy", ["least_confidence", "diverse:least_confidence"])
def test_uncertainty_queue_and_rollback(any_label_studio, make_settings, strategy):
    """On SQLite and on PostgreSQL: after a retrain Label Studio serves the task with the lowest
    current score first; diversity-aware strategies write a ``cluster`` per prediction; pinning
    an older version and re-scoring re-writes the queue for it and removes the newer one's."""
    from backend.prelabel import rescore_project

    ls = any_label_studio
    sdk = _client(ls)
    backend = _backend(make_settings, ls, RESCORE_CANDIDATES="120", QUEUE_SIZE="30", QUERY_STRATEGY=strategy)
    pid, tasks, gold = _project(sdk, backend, 300)
    sdk.projects.update(id=pid, sampling="Uncertainty sampling")
    for i in range(12):
        _annotate(sdk, tasks[i], gold[i])
    v1 = backend.fit(pid)["version"]
    for i in range(12, 20):
        _annotate(sdk, tasks[i], gold[i])
    out = backend.fit(pid)
    v2 = out["version"]
    assert sdk.projects.get(id=pid).model_version == v2
    served = _assert_queue_lowest_first(ls, backend, pid, v2)
    _annotate(sdk, served, [])  # releases Label Studio's lock on it
    current = [p for t in _all_tasks(backend, pid) for p in t["predictions"] if p["model_version"] == v2]
    assert len(current) == 30
    if strategy.startswith("diverse:"):
        assert all(p["cluster"] is not None for p in current) and len({p["cluster"] for p in current}) > 1
    else:
        assert all(p["cluster"] is None for p in current)

    backend.store.pin(pid, v1)  # roll back, then re-score: the queue follows the pinned version
    backend.cache.get(pid)
    done = rescore_project(backend, pid)
    assert done["version"] == v1 and done["written"]["tasks"] == 30
    assert sdk.projects.get(id=pid).model_version == v1
    after = _all_tasks(backend, pid)
    assert not any(p["model_version"] == v2 for t in after if not t["annotations"] for p in t["predictions"])
    _assert_queue_lowest_first(ls, backend, pid, v1)


def test_incremental_annotation_set_equals_a_full_reread(label_studio_pg, make_settings):
    """Create, edit, delete annotations (a second annotation on a task, an edit of an older one, a
    cancelled one, deleting the newest of two, deleting a task's only annotation): after each
    step the incrementally kept training set equals a full re-read, and reads only what changed."""
    from backend.ls_json import human_examples
    from backend.training_data import AnnotationSet

    ls = label_studio_pg
    sdk = _client(ls)
    backend = _backend(make_settings, ls, FULL_SYNC_EVERY="1000")
    pid, tasks, gold = _project(sdk, backend, 60)
    spec, _ = backend.spec_for(pid, None)
    client = _ls_client(backend)
    aset = AnnotationSet(backend.store, pid, full_every=1000)

    def check(expect_read: int | None = None) -> dict:
        got, info = aset.sync(client)
        full = human_examples(client.iter_tasks(pid, annotated=True), spec)
        assert info["mode"] in ("incremental", "full")
        assert human_examples(got, spec) == full
        if expect_read is not None and info["mode"] == "incremental":
            assert info["read"] <= expect_read, info
        return info

    assert check()["mode"] == "full"  # nothing cached yet
    ann = {i: _annotate(sdk, tasks[i], gold[i]) for i in range(10)}
    assert check()["read"] >= 10
    assert check(expect_read=10)["read"] <= 10  # nothing changed: at most the re-read margin
    sdk.annotations.update(id=ann[3], result=ner_result(tasks[3]["data"]["text"], gold[3][:1]))
    check()
    second = _annotate(sdk, tasks[4], gold[4][:1])  # a second annotator on task 4
    check()
    sdk.annotations.update(id=ann[4], result=ner_result(tasks[4]["data"]["text"], []))  # the older one edited
    check()
    sdk.annotations.delete(id=second)  # the newest of two deleted: the older one counts again
    check()
    sdk.annotations.delete(id=ann[7])  # the only annotation: the task leaves the set
    info = check()
    assert info["removed"] == 1
    sdk.annotations.create(id=tasks[20]["id"], result=[], was_cancelled=True)  # skipped: not a label
    _annotate(sdk, tasks[21], gold[21])
    check()
    got, info = aset.sync(client, full=True)  # the periodic full re-read agrees and reports no difference
    assert human_examples(got, spec) == human_examples(client.iter_tasks(pid, annotated=True), spec)
    assert info["mode"] == "full" and info["consistency_differences"] == 0
