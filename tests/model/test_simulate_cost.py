"""Policies at equal cost: the cost model's accounting, F1 at budgets, pre-label + review,
routing per dollar, LLM profiles and the plan CLI - on a tiny synthetic pool (60 sentences)."""
from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("pycrfsuite")

from model.active.routing import fit_thresholds_per_dollar  # noqa: E402
from model.simulation.loop import Config, main as simulate_main, run  # noqa: E402
from model.simulation.cost import (CostModel, at_budgets, f1_at_budget, get_profile,  # noqa: E402
                                 mean_at_budget)
from model.simulation.data import load_data  # noqa: E402
from model.simulation.oracles import PICKERS, GoldOracle, PreLabels  # noqa: E402
from model.simulation.plan import main as plan_main  # noqa: E402
from tests.model.active.test_simulate import _noisy_oracle, write_synthetic  # noqa: E402

PICKER_NAMES = ["uncertainty", "self_consistency", "disagreement"]


@pytest.fixture(scope="module")
def hau(tmp_path_factory):
    """A synthetic pool in a folder named like a language the profiles know."""
    return write_synthetic(tmp_path_factory.mktemp("data") / "hau", n_pool=60, n_test=30)


@pytest.fixture(scope="module")
def cost_run(hau, tmp_path_factory):
    """Every arm, 2 rounds of 10 from 10 seed sentences, the fake LLM at GPT-4o's prices."""
    out = tmp_path_factory.mktemp("out")
    cfg = Config(data=str(hau), strategies=["least_confidence"], oracles=["gold", "llm"],
                 routing=True, route_per_dollar=True, prelabel_pickers=PICKER_NAMES,
                 prelabel_fraction=0.5, seed_size=10, batch_size=10, rounds=2, seeds=[0],
                 model_params={"max_iterations": 20}, word_clusters=False, full_f1=1.0,
                 llm_profile="afrobench-gpt-4o", fake_llm="noisy-0.1", llm_samples=2,
                 budgets=[0.1, 0.5, 5.0], out=str(out))
    return run(cfg), out


def test_cumulative_dollars_are_what_the_cost_model_says(cost_run):
    result, _ = cost_run
    cost = CostModel(**result["cost_model"])
    assert (cost.llm_price_in_per_1m, cost.llm_price_out_per_1m) == (2.5, 10.0)  # the profile's
    rows = result["rows"]
    assert {r["oracle"] for r in rows} == {"gold", "llm", "llm+route", "llm+route-per-usd",
                                           *(f"prelabel+{p}" for p in PICKER_NAMES)}
    for r in rows:
        edits = r["n_reviewed"] - r["n_reviewed_correct"]
        assert r["human_cost_usd"] == pytest.approx(
            0.036 * r["n_human_scratch"] + 0.018 * r["n_reviewed_correct"] + 0.036 * edits)
        # LLM $ = the annotator's reported usage cost: the profile's prices x the tokens (a
        # request's tokens are shared out over its sentences in whole tokens, hence rel=1 %)
        assert r["llm_cost_usd"] == pytest.approx(cost.llm(r["llm_tokens_in"],
                                                           r["llm_tokens_out"]), rel=0.01)
        assert r["total_cost_usd"] == pytest.approx(r["human_cost_usd"] + r["llm_cost_usd"])
        if r["oracle"] == "gold":
            assert r["llm_cost_usd"] == 0 and r["n_human_scratch"] == r["n_labeled"]
        elif r["oracle"] == "llm":
            assert r["n_reviewed"] == 0 and (r["round"] == 0) == (r["llm_cost_usd"] == 0)
    pre = sorted((r for r in rows if r["oracle"] == "prelabel+self_consistency"),
                 key=lambda r: r["round"])
    assert pre[0]["llm_cost_usd"] > 0 and pre[0]["n_reviewed"] == 0  # bought up front
    assert pre[0]["llm_cost_usd"] == pre[-1]["llm_cost_usd"]          # and never again
    assert [r["n_reviewed"] for r in pre] == [0, 10, 20]
    assert pre[0]["n_labeled"] == 10 + 25 - pre[0]["n_llm_failed"]    # seed + half of the rest
    routed = [r for r in rows if r["oracle"] == "llm+route"][-1]
    assert routed["n_human"] == routed["n_human_scratch"] + routed["n_reviewed"]


def test_f1_at_budget_reads_the_last_round_that_fits_and_never_extrapolates():
    rows = [{"round": k, "total_cost_usd": c, "f1": f, "n_labeled": 10 * (k + 1),
             "n_pool_left": left} for k, (c, f, left) in
            enumerate([(1.0, 0.3, 5), (2.0, 0.5, 3), (3.0, 0.6, 0)])]
    assert f1_at_budget(rows, 0.5)["status"] == "below_first_round"
    assert f1_at_budget(rows, 0.5)["f1"] is None
    p = f1_at_budget(rows, 2.5)
    assert (p["f1"], p["cost"], p["round"], p["status"]) == (0.5, 2.0, 1, "ok")
    p = f1_at_budget(rows, 10.0)  # the pool ran out at $3: said so, F1 not extrapolated
    assert (p["f1"], p["cost"], p["status"]) == (0.6, 3.0, "pool_exhausted")
    rows[-1]["n_pool_left"] = 4
    assert f1_at_budget(rows, 10.0)["status"] == "rounds_ended"
    m = mean_at_budget([f1_at_budget(rows, 2.5), f1_at_budget(rows[1:], 1.5)])
    assert m["f1"] is None and m["status"] == "below_first_round"  # one seed cannot afford it


def test_summary_and_saved_rows_give_f1_at_each_budget(cost_run):
    result, out = cost_run
    arms = result["summary"]["arms"]
    point = arms["least_confidence/gold"]["at_budget"]["0.1"]
    assert point["f1"] is None and point["status"] == "below_first_round"  # seed set is $0.36
    saved = json.loads((out / "simulation.json").read_text())
    again = at_budgets(saved["rows"], [5.0])
    assert again["least_confidence/gold"][5.0]["status"] == "rounds_ended"  # $1.08 < $5
    assert result["summary"]["best_at_budget"]["5.0"]["arm"] in arms


def test_prelabels_review_replaces_llm_labels_with_gold_once(hau):
    data = load_data("ner", hau)
    gold, llm = GoldOracle(data.Y), _noisy_oracle(data, p_flip=0.3)
    pre = PreLabels(data, list(range(10, 40)), llm)
    labels = {i: t for i, t in pre.tags.items()}
    counts = {"reviewed_correct": 0, "reviewed_edit": 0}
    rng = np.random.default_rng(0)
    cand = pre.candidates()
    picked = PICKERS["self_consistency"](pre, cand, 5, None, None, None, np.array([]), rng)
    assert len(set(picked)) == 5 and set(picked) <= set(cand.tolist())
    lowest = sorted(pre.consistency[i] for i in cand)[:5]
    assert sorted(pre.consistency[i] for i in picked) == lowest
    pre.review(picked, gold, labels, counts)
    assert all(labels[i] == data.Y[i] for i in picked)
    assert counts["reviewed_correct"] + counts["reviewed_edit"] == 5
    assert not set(picked) & set(pre.candidates().tolist())  # reviewed items leave the pool
    with pytest.raises(AssertionError, match="reviewed twice"):
        pre.review(picked[:1], gold, labels, counts)


def test_routing_per_dollar_accepts_a_good_cheap_llm_and_reviews_a_poor_one():
    rng = np.random.default_rng(0)
    c, a = rng.random(40), rng.random(40)
    review = np.full(40, 0.036)
    good = fit_thresholds_per_dollar(c, a, np.full(40, 0.95), review, llm_cost=0.003)
    assert not good.accepts_nothing and good.coverage == 1.0
    poor = fit_thresholds_per_dollar(c, a, np.full(40, 0.4), review, llm_cost=0.003)
    assert poor.accepts_nothing  # value 2 * 0.4 - 1 < 0: every label is reviewed
    assert fit_thresholds_per_dollar(c[:5], a[:5], np.ones(5), review[:5], 0.003).accepts_nothing


def test_profiles_map_to_personas_and_name_their_languages():
    assert get_profile("afrobench-gpt-4o").persona("hau") == "systematic-0.509"
    assert get_profile("afrobench-gemma-2-27b").persona("yor") == "systematic-0.531"
    assert get_profile("paper-fewshot").persona("zul") == "systematic-acc-0.9"
    with pytest.raises(ValueError, match=r"no figure for language 'zul'.*'hau', 'swa', 'yor'"):
        get_profile("afrobench-gpt-4o").persona("zul")
    with pytest.raises(ValueError, match="unknown LLM profile"):
        get_profile("gpt-5")


def test_plan_prints_the_best_policy_of_a_saved_run(cost_run, capsys):
    _, out = cost_run
    assert plan_main(["--from-run", str(out / "simulation.json"), "--budget", "0.5"]) == 0
    text = capsys.readouterr().out
    assert "cost model: human $0.0360/sentence" in text
    assert "best policy at $0.5: least_confidence/" in text
    assert "| least_confidence/gold |" in text


def test_plan_and_simulate_exit_nonzero_on_unknown_profile_or_language(hau, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        plan_main(["--data", str(hau), "--llm-profile", "gpt-5", "--budget", "5"])
    assert e.value.code == 2 and "unknown LLM profile 'gpt-5'" in capsys.readouterr().err
    zul = write_synthetic(tmp_path / "zul", n_pool=20, n_test=10)
    with pytest.raises(SystemExit) as e:
        plan_main(["--data", str(zul), "--llm-profile", "afrobench-gpt-4o", "--budget", "5"])
    assert e.value.code == 2 and "no figure for language 'zul'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        simulate_main(["--data", str(zul), "--llm-profile", "afrobench-gpt-4o"])
    assert e.value.code == 2 and "it has ['hau', 'swa', 'yor']" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        plan_main(["--from-run", str(tmp_path / "missing.json"), "--budget", "5"])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        plan_main(["--data", str(hau), "--llm-profile", "paper-fewshot", "--budget", "-1"])
    assert e.value.code == 2 and "--budget must be a positive" in capsys.readouterr().err


def test_plan_runs_the_policies_for_an_endpoints_measured_f1(hau, tmp_path, capsys):
    """``--llm-f1`` (a real endpoint's figure, e.g. from a selection run): the fake server is
    calibrated to it on this pool, every policy runs to the budget, and the answer names the
    persona, the prices and the best policy."""
    argv = ["--data", str(hau), "--llm-f1", "0.8", "--llm-price-in", "0.5", "--llm-price-out",
            "1.5", "--budget", "0.6", "--max-pool", "60", "--max-test", "30", "--seed-size", "10",
            "--batch-size", "10", "--max-rounds", "2", "--llm-samples", "1",
            "--out", str(tmp_path / "plan")]
    assert plan_main(argv) == 0
    text = capsys.readouterr().out
    assert "LLM: entity F1 0.8 at $0.5 / $1.5 per 1M tokens (persona systematic-0.8)" in text
    assert "$0.5 / $1.5 per 1M input / output tokens, 1 sample(s)" in text
    for policy in ("least_confidence/gold", "least_confidence/llm", "prelabel+uncertainty",
                   "llm+route-per-usd"):
        assert policy in text
    assert "best policy at $0.6: " in text
    saved = json.loads((tmp_path / "plan" / "simulation.json").read_text())
    assert max(r["human_cost_usd"] + r["llm_cost_usd"] for r in saved["rows"]) <= 0.6 + 10 * 0.036
