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
