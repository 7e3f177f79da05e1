"""Live agreement from Label Studio's own task JSON, routing thresholds, auto-acceptance, warnings."""
from __future__ import annotations

import json

from backend import live_agreement
from backend.label_config import parse_label_config
from backend.model_store import ModelStore
from backend.ls_json import example_from_task
from tests.conftest import NER_CONFIG

SPEC = parse_label_config(NER_CONFIG)
TEXT = "Musa ya je Kano ranar Litinin"


def _region(a, b, label, score=None):
    r = {"from_name": "label", "to_name": "text", "type": "labels",
         "value": {"start": a, "end": b, "text": TEXT[a:b], "labels": [label]}}
    if score is not None:
        r["score"] = score
    return r


GOLD = [_region(0, 4, "PER"), _region(11, 15, "LOC")]
WRONG = [_region(0, 4, "ORG"), _region(11, 15, "LOC")]


def _task(tid, llm, model, human=None, llm_score=0.97):
    return {"id": tid, "data": {"text": TEXT},
            "predictions": [{"model_version": "llm:gpt", "score": llm_score, "result": llm, "created_at": "1"},
                            {"model_version": "v1", "score": 0.8, "result": model, "created_at": "2"}],
            "annotations": [] if human is None else [{"id": tid, "result": human, "was_cancelled": False}]}


def _examples(tasks):
    return {t["id"]: ex for t in tasks if (ex := example_from_task(t, SPEC)) is not None}


def test_live_scores_per_source_and_label(tmp_path):
    store = ModelStore(tmp_path)
    tasks = [_task(i, GOLD, GOLD, GOLD) for i in range(8)] + [_task(8 + i, WRONG, GOLD, GOLD) for i in range(2)]
    out = live_agreement.update(store, 1, SPEC, tasks, _examples(tasks))
    llm, model = out["sources"]["llm"], out["sources"]["model"]
    assert llm["n_tasks"] == model["n_tasks"] == 10
    assert model["entity_f1"] == 1.0 and model["token_kappa"] == 1.0
    # 20 gold entities, LLM got 18 right and 2 wrong (PER labelled ORG): P = R = 18/20
    assert abs(llm["entity_f1"] - 0.9) < 1e-9
    assert llm["per_label"]["LOC"]["f1"] == 1.0 and llm["per_label"]["PER"]["support"] == 10
    assert 0 < llm["token_kappa"] < 1
    assert json.loads((store.project_dir(1) / "agreement.json").read_text())["history"][-1]["llm"] == llm["entity_f1"]
    assert live_agreement.plot(store, 1)[:4] == b"\x89PNG"


def test_routing_needs_evidence_then_accepts_only_agreeing_unlabelled_tasks(tmp_path):
    store = ModelStore(tmp_path)
    few = [_task(i, GOLD, GOLD, GOLD) for i in range(5)]
    out = live_agreement.update(store, 1, SPEC, few, _examples(few))
    assert out["routing"]["policy"]["min_consistency"] is None  # too little evidence: accept nothing
    reviewed = [_task(i, GOLD, GOLD, GOLD) for i in range(30)] + [_task(30 + i, WRONG, GOLD, GOLD, 0.5)
                                                                 for i in range(10)]
    unlabeled = [_task(100, GOLD, GOLD), _task(101, WRONG, GOLD), _task(102, GOLD, GOLD, llm_score=0.2)]
    tasks = reviewed + unlabeled
    out = live_agreement.update(store, 1, SPEC, tasks, _examples(tasks))
    pol = out["routing"]["policy"]
    assert pol["min_consistency"] is not None and pol["est_quality"] >= 0.95
    accepted = live_agreement.auto_accepted(store, 1, SPEC, tasks, out, "text")
    assert [e.task_id for e in accepted] == [100]  # agrees with the model and is self-consistent
    assert {(s.start, s.end, s.label) for s in accepted[0].spans} == {(0, 4, "PER"), (11, 15, "LOC")}


def test_warns_when_llm_falls_below_selection(tmp_path):
    store = ModelStore(tmp_path)
    sel = store.project_dir(1) / "selection"
    sel.mkdir(parents=True)
    (sel / "selection.json").write_text(json.dumps(
        {"decision": {"winner": "gpt"}, "candidates": {"gpt": {"metrics": {"f1_mean": 0.99}}}}))
    tasks = [_task(i, WRONG, GOLD, GOLD) for i in range(25)]
    out = live_agreement.update(store, 1, SPEC, tasks, _examples(tasks))
    assert out["warnings"] and "below the 0.990 the selection run measured for gpt" in out["warnings"][0]
