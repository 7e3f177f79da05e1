"""NER_AUX_DATA through the backend: a retrain triggered like Label Studio's webhook learns from a
related language's corpus beside the project's annotations, and the predictions it writes back to
Label Studio carry a label the project's annotators never used yet."""
from __future__ import annotations

from tests.faults.conftest import fake_ls, ls_env  # noqa: F401 (fixtures)
from tests.model.test_local_aux import PEOPLE, write_aux


def test_retrain_with_aux_corpus_writes_predictions_with_its_labels(fake_ls, ls_env, make_settings,  # noqa: F811
                                                                   tmp_path):
    from backend.ml import MLBackend
    from backend.model_store import ModelStore
    from tests.conftest import NER_CONFIG

    aux = write_aux(tmp_path / "aux.conll")
    texts = [f"{PEOPLE[i % 4]} ya ce ." for i in range(12)]
    ids = fake_ls.add_tasks(1, texts + ["Bello ya tafi Katsina ."])
    for tid, text in zip(ids, texts):
        who = text.split()[0]
        fake_ls.annotate(1, tid, [{"from_name": "label", "to_name": "text", "type": "labels",
                                   "value": {"start": 0, "end": len(who), "text": who, "labels": ["PER"]}}])
    settings = make_settings(**{**ls_env, "NER_MAX_EPOCHS": "15", "NER_AUX_DATA": str(aux),
                                "NER_AUX_MAX": "200"})
    ModelStore(settings.model_dir).save_project(1, label_config=NER_CONFIG)
    out = MLBackend(settings).fit(1, "ANNOTATION_CREATED")
    assert out["status"] == "trained" and out["n_examples"] == 12  # aux sentences are not examples
    (meta,) = [v for v in ModelStore(settings.model_dir).versions(1) if v["version"] == out["version"]]
    assert meta["metrics"]["n_aux_sentences"] == 200

    (pred,) = [p for p in fake_ls.predictions[1] if p["task"] == ids[-1]]
    regions = {(r["value"]["start"], r["value"]["end"], r["value"]["labels"][0]) for r in pred["result"]}
    assert (14, 21, "LOC") in regions, pred["result"]  # "Katsina"


def test_word_classes_of_a_large_pool_come_from_a_bounded_sample(fake_ls, ls_env, make_settings):  # noqa: F811
    """NER_CLUSTER_TEXTS: above it the first training lists a seeded sample of the pool, not the
    pool (listing 100,000 tasks costs Label Studio ~30 s), spread over the whole listing; the next
    training reuses the cached classes without listing texts at all."""
    from backend.ls_client import LabelStudioClient
    from backend.ml import MLBackend
    from backend.model_store import ModelStore
    from tests.conftest import NER_CONFIG

    texts = [f"{PEOPLE[i % 4]} ya ce wani abu {i} ." for i in range(300)]
    ids = fake_ls.add_tasks(1, texts)
    for tid, text in zip(ids[:6], texts):
        who = text.split()[0]
        fake_ls.annotate(1, tid, [{"from_name": "label", "to_name": "text", "type": "labels",
                                   "value": {"start": 0, "end": len(who), "text": who, "labels": ["PER"]}}])
    sample = LabelStudioClient(fake_ls.url, fake_ls.token).unlabeled_sample(1, 40)
    got = sorted(int(t["id"]) for t in sample)
    assert len(got) == 40 == len(set(got)) and not set(got) & set(ids[:6])
    assert got[-1] - got[0] > 150  # windows spread over the listing, not its first 40 tasks
    assert got == sorted(int(t["id"]) for t in LabelStudioClient(fake_ls.url, fake_ls.token).unlabeled_sample(1, 40))

    settings = make_settings(**{**ls_env, "NER_CLUSTER_TEXTS": "40", "WRITE_PREDICTIONS": "false"})
    ModelStore(settings.model_dir).save_project(1, label_config=NER_CONFIG)
    before = fake_ls.count("GET", "/api/tasks")
    out = MLBackend(settings).fit(1, "ANNOTATION_CREATED")
    assert out["status"] == "trained"
    (meta,) = [v for v in ModelStore(settings.model_dir).versions(1) if v["version"] == out["version"]]
    assert meta["metrics"]["clusters"] == "learnt" and meta["metrics"]["cluster_sentences"] == 6 + 40
    listing = fake_ls.count("GET", "/api/tasks") - before
    assert listing <= 14  # annotations, the count, ten windows of 4; not 300 tasks' pages

    fake_ls.add_tasks(1, [f"Musa ya ce sabon abu {i} ." for i in range(100)])  # the pool grows by a third
    before = fake_ls.count("GET", "/api/tasks")
    out = MLBackend(settings).fit(1, "ANNOTATION_CREATED")
    (meta,) = [v for v in ModelStore(settings.model_dir).versions(1) if v["version"] == out["version"]]
    assert meta["metrics"]["clusters"] == "cached"
    assert fake_ls.count("GET", "/api/tasks") - before <= 3  # changed annotations and the count only
