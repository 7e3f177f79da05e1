"""One model layer: the simulation and the backend train the same ``LocalModel``; the CRF and the
word classes learnt from a project's raw text are saved with each version (JSON, no pickle)."""
from __future__ import annotations

import json
import shutil

import pytest

from model.local import LocalModel
from model.spec import NERControl, TaskSpec
from model.tokenize import join_tokens
from model.types import Example, Span
from tests.faults.conftest import fake_ls, ls_env  # noqa: F401 (fixtures)
from tests.model.active.test_simulate import write_synthetic

SPEC = TaskSpec(ner=NERControl("label", "text", "text", ("PER", "ORG", "LOC", "DATE")))


def _example(tokens, tags) -> Example:
    from model.ner.spans import bio_entities
    text, toks = join_tokens(tokens)
    return Example(text, [Span(toks[a].start, toks[b - 1].end, lab) for a, b, lab in bio_entities(tags)])


def _regions(pred) -> list:
    return [(s.start, s.end, s.label, round(s.score, 6)) for s in pred.spans]


@pytest.fixture
def pool(tmp_path):
    from model.simulation.data import load_data
    return load_data("ner", write_synthetic(tmp_path / "data", n_pool=160, entity_share=0.4, n_test=40))


@pytest.mark.parametrize("kind,params,env", [
    ("crf", {}, {}),
    ("tagger", {"max_epochs": 12}, {"NER_MAX_EPOCHS": "12"}),
])
def test_simulation_and_backend_train_the_identical_model(kind, params, env, pool, fake_ls,  # noqa: F811
                                                          ls_env, make_settings, monkeypatch):  # noqa: F811
    """``python -m model.simulation --model <kind>`` and a retrain through the backend (annotations
    read from Label Studio, the unlabelled tasks listed for the word classes) give the same
    predictions for the same labels and seed: the figures the simulation prints are the served
    model's. (The tagger's CPU-time cap is lifted here: where it bites depends on the machine's
    load, not on the code path.)"""
    from backend.ml import MLBackend
    from model.ner import tagger
    monkeypatch.setitem(tagger.DEFAULTS, "max_seconds", 1e6)
    from backend.model_store import ModelStore
    from model.simulation.loop import Config, _fit
    from tests.conftest import NER_CONFIG

    labelled = list(range(0, 160, 4))  # 40 labels; the other 120 tasks stay unlabelled
    cfg = Config(model=kind, model_params=params)
    simulated = _fit(cfg, pool, labelled, {i: pool.Y[i] for i in labelled}, seed=0)

    texts = [join_tokens(x)[0] for x in pool.X]
    ids = fake_ls.add_tasks(1, texts)
    for i in labelled:
        ex = _example(pool.X[i], pool.Y[i])
        fake_ls.annotate(1, ids[i], [{"from_name": "label", "to_name": "text", "type": "labels",
                                      "value": {"start": s.start, "end": s.end, "labels": [s.label],
                                                "text": ex.text[s.start:s.end]}} for s in ex.spans])
    settings = make_settings(**{**ls_env, **env, "NER_MODEL": kind, "WRITE_PREDICTIONS": "false"})
    ModelStore(settings.model_dir).save_project(1, label_config=NER_CONFIG)
    out = MLBackend(settings).fit(1, "ANNOTATION_CREATED")
    assert out["status"] == "trained" and out["n_examples"] == 40
    served = LocalModel.load(ModelStore(settings.model_dir).version_dir(1, out["version"]) / "model")
    assert served.ner_model == kind
    assert served.tagger_.clusters.digest == simulated.tagger_.clusters.digest  # same raw text
    test = [join_tokens(x)[0] for x in pool.X_test]
    assert [_regions(p) for p in served.predict(test)] == [_regions(p) for p in simulated.predict(test)]
    assert any(_regions(p) for p in served.predict(test))  # it does find entities


def test_crf_version_is_json_and_crfsuite_only_and_predicts_the_same_after_load(pool, tmp_path):
    X = [pool.X[i] for i in range(60)]
    model = LocalModel(SPEC, ner_model="crf").fit([_example(x, y) for x, y in zip(X, pool.Y[:60])],
                                                  unlabelled_texts=[join_tokens(x)[0] for x in pool.X[60:]])
    model.save(tmp_path / "v1")
    files = sorted(p.relative_to(tmp_path / "v1").as_posix() for p in (tmp_path / "v1").rglob("*") if p.is_file())
    assert files == ["local_model.json", "ner/crf.json", "ner/model.crfsuite"]
    saved = json.loads((tmp_path / "v1" / "ner" / "crf.json").read_text())
    assert len(saved["clusters"]["classes"]) > 10  # the word classes travel with the version
    loaded = LocalModel.load(tmp_path / "v1")
    texts = [join_tokens(x)[0] for x in pool.X_test]
    assert [_regions(p) for p in loaded.predict(texts)] == [_regions(p) for p in model.predict(texts)]
    assert [p.score for p in loaded.predict(texts)] == [p.score for p in model.predict(texts)]


def test_bald_on_a_crf_says_what_it_lacks(pool):
    from model.active import get_strategy
    model = LocalModel(SPEC, ner_model="crf").fit([_example(x, y) for x, y in zip(pool.X[:30], pool.Y[:30])])
    texts = [join_tokens(x)[0] for x in pool.X[30:40]]
    with pytest.raises(Exception, match="mc_marginals"):
        get_strategy("bald").query(model.outputs(texts), list(range(10)), 2)


def test_word_classes_are_cached_per_project_reused_until_the_text_grows_and_kept_by_each_version(
        pool, tmp_path, monkeypatch):
    from model.ner import clusters as cl

    calls = []
    real = cl.learn_clusters
    monkeypatch.setattr(cl, "learn_clusters", lambda s, **kw: calls.append(len(s)) or real(s, **kw))
    monkeypatch.setattr(cl, "_MEMORY", {})
    monkeypatch.setattr(cl, "_LEARNT", {})
    cache_dir = tmp_path / "project" / "clusters"
    examples = [_example(x, y) for x, y in zip(pool.X[:40], pool.Y[:40])]
    texts = [join_tokens(x)[0] for x in pool.X[40:]]

    def fit(unlabelled):
        return LocalModel(SPEC, ner_model="crf").fit(examples, unlabelled_texts=unlabelled, cluster_dir=cache_dir)

    first = fit(texts[:60])  # 100 sentences of text
    assert calls == [100] and first.metrics_["clusters"] == "learnt" and (cache_dir / "clusters.json").is_file()
    monkeypatch.setattr(cl, "_MEMORY", {})  # a restarted worker reads the file
    again = fit(texts[:60])
    assert calls == [100] and again.metrics_["clusters"] == "cached"
    grown = fit(texts[:75])  # 115 sentences: +15 %, under the refresh threshold of 20 %
    assert calls == [100] and grown.metrics_["clusters"] == "cached"
    assert grown.tagger_.clusters.digest == first.tagger_.clusters.digest
    listed = []

    def listing(part):  # what the backend passes: a function listing the tasks, and their count
        return lambda: listed.append(len(part)) or part
    counted = LocalModel(SPEC, ner_model="crf").fit(examples, unlabelled_texts=listing(texts[:75]),
                                                    n_unlabelled=75, cluster_dir=cache_dir)
    assert listed == [] and counted.metrics_["clusters"] == "cached"  # fresh for 115: nothing listed
    assert counted.tagger_.clusters.digest == first.tagger_.clusters.digest
    refreshed = LocalModel(SPEC, ner_model="crf").fit(examples, unlabelled_texts=listing(texts),
                                                      n_unlabelled=len(texts), cluster_dir=cache_dir)
    assert listed == [120]  # 160 sentences: +60 % -> listed and relearnt, the file replaced
    assert calls == [100, 160] and refreshed.metrics_["clusters"] == "learnt"
    assert json.loads((cache_dir / "clusters.json").read_text())["n_sentences"] == 160

    # a version keeps the classes it was trained with: after the cache is gone, same predictions
    first.save(tmp_path / "v1")
    shutil.rmtree(cache_dir)
    test = [join_tokens(x)[0] for x in pool.X_test]
    assert [_regions(p) for p in LocalModel.load(tmp_path / "v1").predict(test)] == \
        [_regions(p) for p in first.predict(test)]


def test_word_classes_do_not_depend_on_the_order_of_the_texts(pool):
    from model.ner.clusters import learn_clusters
    a = learn_clusters(pool.X[:120], dim=10)
    b = learn_clusters(list(reversed(pool.X[:120])), dim=10)
    assert a.digest == b.digest and a.classes == b.classes and len(a) > 5


def test_tagger_uses_and_saves_the_word_classes(pool, tmp_path):
    examples = [_example(x, y) for x, y in zip(pool.X[:40], pool.Y[:40])]
    unl = [join_tokens(x)[0] for x in pool.X[40:]]
    model = LocalModel(SPEC, ner_model="tagger", ner_params={"max_epochs": 2}).fit(examples, unlabelled_texts=unl)
    enc = model.tagger_.vocab_.encode(pool.X[0])[3]
    assert (enc[:, 10:13] > 0).any()  # cluster features present
    model.save(tmp_path / "v")
    texts = [join_tokens(x)[0] for x in pool.X_test]
    loaded = LocalModel.load(tmp_path / "v")
    assert loaded.tagger_.clusters.digest == model.tagger_.clusters.digest
    assert [_regions(p) for p in loaded.predict(texts)] == [_regions(p) for p in model.predict(texts)]
    plain = LocalModel(SPEC, ner_model="tagger", ner_params={"max_epochs": 2}, word_clusters=False).fit(examples)
    assert plain.tagger_.clusters is None and not (plain.tagger_.vocab_.encode(pool.X[0])[3][:, 10:] > 0).any()


@pytest.mark.parametrize("env,expected", [
    ({}, "crf"), ({"NER_MODEL": "tagger"}, "tagger"), ({"NER_BACKBONE": "/m"}, "backbone"),
    ({"NER_MODEL": "crf", "NER_BACKBONE": "/m"}, "crf"),
])
def test_ner_model_setting(env, expected):
    from backend.settings import Settings
    assert Settings.from_env(env).ner_model == expected


@pytest.mark.parametrize("env,match", [({"NER_MODEL": "bert"}, "expected one of tagger, crf, backbone"),
                                       ({"NER_MODEL": "backbone"}, "needs NER_BACKBONE")])
def test_bad_ner_model_stops_start_up(env, match):
    from backend.settings import Settings
    with pytest.raises(ValueError, match=match):
        Settings.from_env(env)
