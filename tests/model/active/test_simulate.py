"""The offline simulation: end to end on a synthetic task where uncertainty clearly helps."""
from __future__ import annotations

import json
import string
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn_crfsuite")

from model.simulation.loop import Config, main, run, run_arm  # noqa: E402
from model.simulation.report import format_summary  # noqa: E402
from model.simulation.data import load_data  # noqa: E402
from model.simulation.oracles import GoldOracle, LLMOracle, vote  # noqa: E402

# 12 context cues, each announcing one entity type; a cue is learnable only from its own sentences
CUES = [("in", "LOC", "before"), ("said", "PER", "after"), ("at", "ORG", "before"),
        ("on", "DATE", "before"), ("told", "PER", "after"), ("near", "LOC", "before"),
        ("joined", "ORG", "before"), ("since", "DATE", "before"), ("met", "PER", "before"),
        ("visited", "LOC", "before"), ("reported", "ORG", "after"), ("until", "DATE", "before")]


def _name(rng):
    return "".join(rng.choice(list(string.ascii_lowercase), int(rng.integers(4, 8)))).title()


def _filler(rng, k):
    words = [f"w{int(i)}" for i in rng.integers(0, 40, k)]
    return words


def _sentence(rng, entity: bool):
    toks = _filler(rng, int(rng.integers(4, 8)))
    toks[0] = toks[0].title()  # capitalised sentence starts: capitals alone are not entities
    tags = ["O"] * len(toks)
    if entity:
        cue, label, side = CUES[int(rng.integers(len(CUES)))]
        name = _name(rng)
        pos = int(rng.integers(1, len(toks)))
        ins = [cue, name] if side == "before" else [name, cue]
        itags = ["O", f"B-{label}"] if side == "before" else [f"B-{label}", "O"]
        toks[pos:pos] = ins
        tags[pos:pos] = itags
    return toks, tags


def write_synthetic(folder, seed=0, n_pool=500, entity_share=0.1, n_test=150):
    """Pool: 90 % filler sentences (nothing to learn), 10 % entity sentences; test: all entity."""
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for split, n, share in (("train", n_pool, entity_share), ("test", n_test, 1.0)):
        with open(folder / f"{split}.txt", "w", encoding="utf-8") as fh:
            for _ in range(n):
                toks, tags = _sentence(rng, rng.random() < share)
                fh.write("".join(f"{t} {g}\n" for t, g in zip(toks, tags)) + "\n")
    return folder


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    return write_synthetic(tmp_path_factory.mktemp("synth"))


def test_uncertainty_beats_random_on_a_task_where_it_clearly_helps(synthetic, tmp_path):
    cfg = Config(data=str(synthetic), model="crf", strategies=["least_confidence"],
                 seed_size=10, seed_sampler="entity-rich", batch_size=10, rounds=3, seeds=[0, 1],
                 model_params={"max_iterations": 50}, out=str(tmp_path / "out"))
    result = run(cfg)
    arms = result["summary"]["arms"]
    lc, rnd = arms["least_confidence/gold"], arms["random/gold"]
    assert lc["n_labeled"] == rnd["n_labeled"] == [10, 20, 30, 40]
    # uncertainty finds the rare entity sentences; random mostly buys filler
    assert lc["final_f1"] > rnd["final_f1"] + 0.15, (lc["mean_f1"], rnd["mean_f1"])
    for name in ("simulation.csv", "simulation.json", "learning_curves.png"):
        assert (tmp_path / "out" / name).stat().st_size > 0


class RecordingOracle(GoldOracle):
    """The gold oracle, remembering every item it was asked to label."""

    def __init__(self, Y):
        super().__init__(Y)
        self.bought: list[int] = []

    def label(self, i):
        self.bought.append(i)
        return super().label(i)


def test_no_item_is_ever_bought_twice(synthetic, tmp_path):
    data = load_data("ner", synthetic)
    oracle = RecordingOracle(data.Y)
    bought = oracle.bought
    cfg = Config(data=str(synthetic), strategies=["entropy"], batch_size=50, rounds=9,
                 seed_size=50, model_params={"max_iterations": 10})
    rows = run_arm(cfg, data, "entropy", "gold", 0, np.arange(50), {"gold": oracle})
    assert rows[-1]["n_labeled"] == 500 == len(set(bought)) == len(bought)  # whole pool, once
    # tokens labelled, beside sentences: the seed set's, then the whole pool's
    assert rows[0]["n_tokens_labeled"] == sum(len(x) for x in data.X[:50])
    assert rows[-1]["n_tokens_labeled"] == sum(len(x) for x in data.X)


def test_candidates_limit_informed_picks_to_the_served_sample(synthetic):
    """``candidates``: each round's picks lie in that round's sample of listing windows (the
    sample the backend's writer scores), the sample rotates, and random is not limited."""
    from model.active.candidates import sample_pool

    data = load_data("ner", synthetic)
    cfg = Config(data=str(synthetic), strategies=["least_confidence"], batch_size=20, rounds=4,
                 seed_size=50, candidates=40, model_params={"max_iterations": 10})
    oracle = RecordingOracle(data.Y)
    run_arm(cfg, data, "least_confidence", "gold", 0, np.arange(50), {"gold": oracle})
    bought = oracle.bought[50:]
    assert len(bought) == 80
    labelled, rotation, total, samples = set(range(50)), 0, 0, []
    for r in range(4):
        pool = np.setdiff1d(np.arange(len(data.X)), sorted(labelled))
        sample, rotation, total = sample_pool(pool, 40, rotation, total)
        picks = bought[20 * r: 20 * (r + 1)]
        assert set(picks) <= set(sample), f"round {r}: a pick outside the served sample"
        samples.append(frozenset(sample))
        labelled |= set(picks)
    assert len(set(samples)) == 4  # the windows rotate
    rand = RecordingOracle(data.Y)
    run_arm(cfg, data, "random", "gold", 0, np.arange(50), {"gold": rand})
    assert max(rand.bought[50:70]) - min(rand.bought[50:70]) > 300  # uniform over the 450-item pool


def _noisy_oracle(data, p_flip=0.3, samples=3):
    rng = np.random.default_rng(0)

    def factory(arm):
        def annotate(batch):
            out = []
            for toks in batch:
                gold = data.Y[data.X.index(toks)]
                runs = [[("O" if t != "O" else "B-PER") if rng.random() < p_flip else t
                         for t in gold] for _ in range(samples)]
                tags, cons = vote(runs)
                out.append((tags, cons, {"tokens_in": 100, "tokens_out": 50,
                                         "cost_usd": 0.0025}))
            return out
        return annotate
    return LLMOracle(data.X, factory)


def test_llm_oracle_arm_and_routing_arm(synthetic, tmp_path):
    data = load_data("ner", synthetic)
    oracles = {"gold": GoldOracle(data.Y), "llm": _noisy_oracle(data)}
    cfg = Config(data=str(synthetic), strategies=["least_confidence"], batch_size=20, rounds=3,
                 seed_size=20, model_params={"max_iterations": 30}, routing=True,
                 min_consistency=0.9, min_agreement=1.0)
    seed = np.arange(20)
    llm = run_arm(cfg, data, "least_confidence", "llm", 0, seed, oracles)
    routed = run_arm(cfg, data, "least_confidence", "llm+route", 0, seed, oracles)
    assert llm[-1]["n_llm"] == 60 and llm[-1]["n_human"] == 20  # seed set is human-labelled
    assert 0.5 < llm[-1]["llm_label_token_acc"] < 1.0
    assert llm[-1]["llm_cost_usd"] == pytest.approx(60 * 0.0025)  # this arm's calls only
    assert routed[-1]["n_human"] > 20 and routed[-1]["n_llm"] == routed[-1]["n_auto_accepted"]
    assert routed[-1]["n_human"] + routed[-1]["n_llm"] == 80
    # what routing lets through is cleaner than the raw LLM labels
    if routed[-1]["n_llm"]:
        assert routed[-1]["llm_label_token_acc"] > llm[-1]["llm_label_token_acc"]


def test_vote_and_failed_samples():
    tags, cons = vote([["B-PER", "O"], ["B-PER", "O"], ["O", "O"]])
    assert tags == ["B-PER", "O"] and cons == pytest.approx(2 / 3)
    assert vote([None, None]) == (None, 0.0)
    tags, cons = vote([["O", "I-LOC"], None])
    assert tags == ["O", "B-LOC"] and cons == pytest.approx(0.5)  # a failed sample counts against


def test_cli_help_and_bad_strategy(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "--human-cost-per-sentence" in out and "wring.co" in out
    with pytest.raises(ValueError, match="least_confidence"):
        main(["--strategies", "uncertainty"])


def test_cli_writes_summary_json(synthetic, tmp_path, capsys):
    assert main(["--data", str(synthetic), "--strategies", "margin", "--rounds", "1",
                 "--seed-size", "20", "--batch-size", "20", "--model-param", "max_iterations=20",
                 "--out", str(tmp_path)]) == 0
    res = json.loads((tmp_path / "simulation.json").read_text())
    assert set(res["summary"]["arms"]) == {"random/gold", "margin/gold"}
    assert "labels to 95 %" in capsys.readouterr().out


def _rows(strategy, f1s, sizes):
    return [{"strategy": strategy, "oracle": "gold", "seed": 0, "round": r, "n_labeled": n,
             "f1": f, "entity_token_acc": f, "llm_cost_usd": 0.0, "human_cost_usd": n * 0.036,
             "n_human": n, "n_llm": 0, "n_llm_failed": 0, "llm_label_token_acc": None}
            for r, (f, n) in enumerate(zip(f1s, sizes))]


def test_summary_labels_to_95_and_ratio_to_random():
    from model.simulation.report import format_summary, summarise
    sizes = [100, 200, 300, 400]
    result = {"full_data_f1": 0.8, "pool_size": 1000, "test_size": 10,
              "config": {"model": "crf", "seeds": [0], "human_cost_per_sentence": 0.036},
              "full_data_f1_given": True,
              "rows": _rows("least_confidence", [0.5, 0.77, 0.78, 0.79], sizes)
              + _rows("random", [0.5, 0.6, 0.7, 0.76], sizes)}
    s = summarise(result)
    lc, rnd = s["arms"]["least_confidence/gold"], s["arms"]["random/gold"]
    assert lc["labels_to_95"] == 200 and lc["fraction_to_95"] == 0.2  # 0.77 >= 0.95 * 0.8
    assert rnd["labels_to_95"] == 400 and lc["ratio_to_random"] == 0.5
    assert s["best_gold_strategy"] == "least_confidence"
    result["rows"] = result["rows"][:4] + _rows("random", [0.5, 0.6, 0.7, 0.72], sizes)
    s = summarise(result)
    lc = s["arms"]["least_confidence/gold"]
    assert s["arms"]["random/gold"]["labels_to_95"] is None
    assert lc["ratio_to_random"] == 0.5 and lc["ratio_is_upper_bound"]  # random: > 400 labels
    result["summary"] = s
    text = format_summary(result)
    assert "> 400" in text and "< 0.50" in text


def test_summary_reports_tokens_labelled_and_their_ratio_to_random():
    """A strategy buying long sentences reaches the target with fewer sentences than random but
    pays in tokens: the summary shows both ratios, and results saved before tokens were recorded
    still summarise (no token figures)."""
    from model.simulation.report import format_summary, summarise
    sizes = [100, 200, 300, 400]
    rows = _rows("total_entropy", [0.5, 0.77, 0.78, 0.79], sizes) \
        + _rows("random", [0.5, 0.6, 0.7, 0.76], sizes)
    for r in rows:  # total_entropy buys 40-token sentences, random 20-token ones
        r["n_tokens_labeled"] = r["n_labeled"] * (40 if r["strategy"] != "random" else 20)
    result = {"full_data_f1": 0.8, "pool_size": 1000, "test_size": 10, "rows": rows,
              "config": {"model": "crf", "seeds": [0], "human_cost_per_sentence": 0.036},
              "full_data_f1_given": True}
    s = summarise(result)
    te, rnd = s["arms"]["total_entropy/gold"], s["arms"]["random/gold"]
    assert (te["labels_to_95"], te["tokens_to_95"], rnd["tokens_to_95"]) == (200, 8000, 8000)
    assert te["ratio_to_random"] == 0.5 and te["token_ratio_to_random"] == 1.0
    result["summary"] = s
    assert "| 8,000 (1.00) |" in format_summary(result)
    for r in rows:
        del r["n_tokens_labeled"]
    old = summarise(result)["arms"]["total_entropy/gold"]
    assert old["tokens_to_95"] is None and old["token_ratio_to_random"] is None
    assert old["ratio_to_random"] == 0.5


def test_word_clusters_group_words_by_context_and_feed_the_crf(tmp_path):
    """Clusters never mix words seen in different contexts (town names after "in", verbs after
    "they"), and with them the CRF tags towns it never saw labelled, in a context it never saw;
    without them it cannot."""
    import random
    import string

    from model.ner.clusters import SIZES, learn_clusters
    from model.ner.crfsuite import CRFSuiteTagger
    from model.conll import read_conll

    rng = random.Random(0)
    word = lambda: "".join(rng.choice(string.ascii_lowercase) for _ in range(7))  # noqa: E731
    towns, verbs = [word() for _ in range(12)], [word() for _ in range(12)]
    lines = []
    for _ in range(600):
        lines += ["they O", f"{rng.choice(verbs)} O", "in O", f"{rng.choice(towns)} B-LOC", ". O", ""]
    path = tmp_path / "raw.conll"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    clusters = learn_clusters([toks for toks, _ in read_conll(path)], dim=8)
    cl = clusters.classes
    for level in range(len(SIZES)):
        assert not {cl[t][level] for t in towns} & {cl[v][level] for v in verbs}

    # labelled: towns 0-5 and verbs 0-5 after the same neutral words, so only the word (or its
    # cluster) tells them apart; the test: towns 6-11, never labelled
    X = [[("so", "then", "now")[i % 3], (towns if i % 2 else verbs)[i % 6]] for i in range(60)]
    y = [["O", "B-LOC" if i % 2 else "O"] for i in range(60)]
    unseen = [["now", t] for t in towns[6:]]
    p_loc = lambda crf: np.mean([m[1, crf.tags_.index("B-LOC")] for m in crf.predict_marginals(unseen)])  # noqa: E731
    with_cl = p_loc(CRFSuiteTagger(max_iterations=50, clusters=clusters).fit(X, y))
    without = p_loc(CRFSuiteTagger(max_iterations=50).fit(X, y))
    assert with_cl > without + 0.2, (with_cl, without)


def test_auxiliary_corpora_train_every_round_but_are_never_bought(synthetic, tmp_path):
    """A labelled corpus of another "language" (same cues, other names) lifts the curve from the
    first round, while the labels counted, the pool and the items bought are the project's own;
    entity types the project lacks become O, and the run reports full-data F1 without the corpus
    too."""
    aux = write_synthetic(tmp_path / "aux", seed=7, n_pool=300, entity_share=1.0)
    with open(aux / "train.txt", "a", encoding="utf-8") as fh:
        fh.write("Tomorrow B-EVENT\nparade I-EVENT\n\n")  # a type the project does not have
    common = dict(data=str(synthetic), model="crf", strategies=["least_confidence"], seed_size=10,
                  batch_size=10, rounds=1, seeds=[0], model_params={"max_iterations": 50})
    plain = run(Config(**common, out=str(tmp_path / "plain")))
    data = load_data("ner", synthetic)
    cfg = Config(**common, aux_data=[str(aux / "train.txt")], out=str(tmp_path / "aux_out"))
    from model.simulation.data import load_aux
    load_aux(data, cfg.aux_data)
    assert len(data.X_aux) == 301 and data.Y_aux[-1] == ["O", "O"]
    oracle = RecordingOracle(data.Y)
    bought = oracle.bought
    rows = run_arm(cfg, data, "least_confidence", "gold", 0, np.arange(10), {"gold": oracle})
    assert [r["n_labeled"] for r in rows] == [10, 20] and len(bought) == len(set(bought)) == 20
    assert max(bought) < len(data.X)  # only pool items were ever bought

    with_aux = run(cfg)
    assert with_aux["aux_size"] == 301
    given = run(Config(**{**common, "full_f1": 0.9}, aux_data=cfg.aux_data,
                       out=str(tmp_path / "given")))  # --full-f1 skips both full-data fits
    assert given["pool_only_full_data_f1"] is None
    assert "301 sentences in every training set" in format_summary(given)
    assert with_aux["pool_only_full_data_f1"] == pytest.approx(plain["full_data_f1"])
    f1 = lambda res: [r["f1"] for r in res["rows"] if r["strategy"] == "random"]  # noqa: E731
    assert f1(with_aux)[0] > f1(plain)[0] + 0.3, (f1(with_aux), f1(plain))  # 10 labels + aux


def test_parallel_jobs_give_the_serial_rows(synthetic, tmp_path):
    common = dict(data=str(synthetic), model="crf", strategies=["least_confidence"], seed_size=10,
                  batch_size=10, rounds=2, seeds=[0, 1], model_params={"max_iterations": 30},
                  full_f1=0.5)
    serial = run(Config(**common, out=str(tmp_path / "serial")))
    forked = run(Config(**common, jobs=2, out=str(tmp_path / "forked")))
    strip = lambda rows: [{k: v for k, v in r.items() if not k.endswith("_s")} for r in rows]  # noqa: E731
    assert strip(forked["rows"]) == strip(serial["rows"]) and len(serial["rows"]) == 12
    with pytest.raises(ValueError, match="gold oracles only"):
        run(Config(**{**common, "seeds": [0]}, oracles=["gold", "llm"], fake_llm="good", jobs=2,
                   out=str(tmp_path / "llm")))


def test_merge_runs_of_other_seeds_recomputes_the_mean_curve():
    from model.simulation.report import merge_runs
    sizes = [100, 200]
    cfg = {"model": "crf", "human_cost_per_sentence": 0.036, "full_f1": None, "jobs": 1}

    def result(seed, lc, rnd, **extra):
        rows = _rows("least_confidence", lc, sizes) + _rows("random", rnd, sizes)
        for r in rows:
            r["seed"] = seed
        res = {"full_data_f1": 0.8, "pool_size": 1000, "test_size": 10, "full_data_f1_given": False,
               "config": {**cfg, "seeds": [seed], **extra}, "rows": rows}
        return res
    from model.simulation.report import summarise
    first = result(0, [0.70, 0.74], [0.6, 0.7])
    first["summary"] = summarise(first)
    assert first["summary"]["arms"]["least_confidence/gold"]["labels_to_95"] is None  # 0.74 < 0.76
    merged = merge_runs(first, result(1, [0.70, 0.80], [0.6, 0.7], full_f1=0.8, jobs=2))
    lc = merged["summary"]["arms"]["least_confidence/gold"]
    assert merged["config"]["seeds"] == [0, 1] and lc["seeds"] == 2
    assert lc["mean_f1"] == [0.70, 0.77] and lc["labels_to_95"] == 200
    with pytest.raises(ValueError, match="seeds \\[0\\]"):
        merge_runs(first, result(0, [0.7, 0.7], [0.6, 0.6]))
    with pytest.raises(ValueError, match="different configurations"):
        merge_runs(first, result(1, [0.7, 0.7], [0.6, 0.6], model="tagger"))


def test_extend_run_keeps_random_and_checks_the_rounds_both_ran():
    from model.simulation.report import extend_run, summarise
    cfg = {"model": "crf", "human_cost_per_sentence": 0.036, "seeds": [0], "rounds": 1}
    earlier = {"full_data_f1": 0.8, "pool_size": 1000, "test_size": 10, "full_data_f1_given": False,
               "config": cfg, "rows": _rows("least_confidence", [0.70, 0.74], [100, 200])
               + _rows("random", [0.6, 0.7, 0.77], [100, 200, 1000])}
    longer = {"config": {**cfg, "rounds": 2},
              "rows": _rows("least_confidence", [0.70, 0.74, 0.78], [100, 200, 300])}
    merged = extend_run(earlier, longer)
    arms = merged["summary"]["arms"]
    assert arms["least_confidence/gold"]["n_labeled"] == [100, 200, 300]
    assert arms["least_confidence/gold"]["labels_to_95"] == 300
    assert arms["random/gold"]["labels_to_95"] == 1000 and arms["least_confidence/gold"]["ratio_to_random"] == 0.3
    assert merged["summary"] == summarise(merged) and merged["config"]["rounds"] == 2
    with pytest.raises(ValueError, match=r"differ in \['batch_size'\]"):  # another experiment
        extend_run(earlier, {**longer, "config": {**longer["config"], "batch_size": 50}})
    with pytest.raises(ValueError, match="seeds"):
        extend_run(earlier, {**longer, "config": {**longer["config"], "seeds": [0, 1]}})
    longer["rows"][1]["f1"] = 0.75  # does not reproduce the saved round 1
    with pytest.raises(ValueError, match="does not reproduce"):
        extend_run(earlier, longer)


def test_add_arms_puts_a_new_strategy_beside_the_saved_random_arm():
    from model.simulation.report import add_arms, summarise
    cfg = {"model": "crf", "human_cost_per_sentence": 0.036, "seeds": [0], "rounds": 1,
           "strategies": ["least_confidence"], "random_arm": True}
    earlier = {"full_data_f1": 0.8, "pool_size": 1000, "test_size": 10, "full_data_f1_given": False,
               "config": cfg, "rows": _rows("least_confidence", [0.70, 0.74], [100, 200])
               + _rows("random", [0.6, 0.7, 0.77], [100, 200, 1000])}
    extra = {"config": {**cfg, "strategies": ["total_entropy"], "random_arm": False},
             "rows": _rows("total_entropy", [0.70, 0.77], [100, 200])}
    merged = add_arms(earlier, extra)
    arms = merged["summary"]["arms"]
    assert set(arms) == {"least_confidence/gold", "random/gold", "total_entropy/gold"}
    assert arms["total_entropy/gold"]["ratio_to_random"] == 0.2  # 200 vs random's 1,000
    assert arms["least_confidence/gold"]["labels_to_95"] is None
    assert merged["config"]["strategies"] == ["least_confidence", "total_entropy"]
    assert merged["summary"] == summarise(merged)
    # a result saved before a config field existed combines with a run that has it at None
    assert add_arms(earlier, {**extra, "config": {**extra["config"], "aux_max": None}})
    with pytest.raises(ValueError, match="already has"):  # never overwrites a measured arm
        add_arms(earlier, {**extra, "rows": _rows("least_confidence", [0.7, 0.8], [100, 200])})
    with pytest.raises(ValueError, match=r"differ in \['model'\]"):
        add_arms(earlier, {**extra, "config": {**extra["config"], "model": "tagger"}})
    with pytest.raises(ValueError, match="seeds"):
        add_arms(earlier, {**extra, "config": {**extra["config"], "seeds": [1]}})


def test_benchmark_suite_continuations_add_seeds_extend_and_add_arms(synthetic, tmp_path,
                                                                    monkeypatch):
    """The benchmark's continuations on a tiny suite: --add more seeds, --extend the strategy
    arms, then --arms a new strategy, which must run as many rounds as the (extended) saved run
    and sit beside its random arm."""
    import torch

    from benchmarks import simulate_al
    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)  # main() would pin this process
    monkeypatch.setattr(simulate_al, "OUT", tmp_path)
    monkeypatch.setitem(simulate_al.SUITES, "tiny", dict(
        data=str(synthetic), model="crf", strategies=["least_confidence"],
        model_params={"max_iterations": 10}, seed_size=10, batch_size=10, rounds=1))
    simulate_al.main(["tiny", "--seeds", "0"])
    simulate_al.main(["tiny", "--seeds", "0", "1", "--add"])
    simulate_al.main(["tiny", "--extend", "2"])
    simulate_al.main(["tiny", "--arms", "margin"])
    saved = json.loads((tmp_path / "tiny" / "simulation.json").read_text())
    arms = saved["summary"]["arms"]
    assert saved["config"]["seeds"] == [0, 1]
    assert saved["config"]["strategies"] == ["least_confidence", "margin"]
    assert arms["random/gold"]["n_labeled"] == [10, 20]          # measured once, kept
    assert arms["least_confidence/gold"]["n_labeled"] == [10, 20, 30]
    assert arms["margin/gold"]["n_labeled"] == [10, 20, 30] and arms["margin/gold"]["seeds"] == 2
    with pytest.raises(SystemExit):
        simulate_al.main(["tiny", "--arms", "margin", "--add"])


def test_crf_feature_cache_is_bounded_and_results_do_not_depend_on_it(synthetic, monkeypatch):
    from model.ner.crfsuite import CRFSuiteTagger
    data = load_data("ner", synthetic)
    X, y = data.X[:60], data.Y[:60]
    unbounded = CRFSuiteTagger(max_iterations=20).fit(X, y).predict(data.X_test[:30])
    monkeypatch.setattr(CRFSuiteTagger, "_FEATURES", {})
    monkeypatch.setattr(CRFSuiteTagger, "_MAX_CACHED", 25)
    tagger = CRFSuiteTagger(max_iterations=20)
    assert tagger.fit(X, y).predict(data.X_test[:30]) == unbounded
    assert 0 < len(CRFSuiteTagger._FEATURES[""]) <= 25


def test_defaults_table_and_stability_report_read_the_saved_runs(synthetic, tmp_path, monkeypatch):
    """``simulate_al defaults`` tabulates each language's crf_/tagger_ run (labels to 95 %, ratio to
    random, F1 at 200 / 500 labels, fit seconds) with medians; ``simulate_al stability`` lists the F1
    of consecutive versions of a session run and flags a drop above 2 points."""
    import torch

    from benchmarks import simulate_al
    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)
    monkeypatch.setattr(simulate_al, "OUT", tmp_path)
    monkeypatch.setattr(simulate_al, "DEFAULT_LANGS", ("syn",))
    common = dict(data=str(synthetic), model="crf", model_params={"max_iterations": 20}, seed_size=100)
    monkeypatch.setitem(simulate_al.SUITES, "crf_syn", dict(**common, strategies=["least_confidence"],
                                                            batch_size=100, rounds=4))
    monkeypatch.setitem(simulate_al.SUITES, "session_crf_syn", dict(**common, strategies=["least_confidence"],
                                                                    batch_size=50, rounds=2, full_f1=1.0))
    simulate_al.main(["crf_syn", "--seeds", "0"])
    simulate_al.main(["session_crf_syn", "--seeds", "0"])
    table = simulate_al.defaults_table()
    saved = json.loads((tmp_path / "crf_syn" / "simulation.json").read_text())
    lc = saved["summary"]["arms"]["least_confidence/gold"]
    row = next(line for line in table.splitlines() if line.startswith("| syn | crf | least_confidence |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[4] == f"{saved['full_data_f1']:.3f}"
    assert cells[7] == f"{lc['mean_f1'][1]:.3f}" and cells[8] == f"{lc['mean_f1'][4]:.3f}"  # 200, 500 labels
    assert any(line.startswith("| crf | least_confidence | syn |") for line in table.splitlines())
    # ``defaults_full``: the same table over the crf_full_<lang> runs (whole train set as the pool)
    import shutil
    shutil.copytree(tmp_path / "crf_syn", tmp_path / "crf_full_syn")
    full = simulate_al.defaults_table(("crf_full",)).splitlines()
    assert any(line.startswith("| syn | crf_full | least_confidence |") for line in full)
    assert not any(line.startswith("| syn | crf |") for line in full)

    report = simulate_al.stability()
    session = json.loads((tmp_path / "session_crf_syn" / "simulation.json").read_text())
    f1 = [r["f1"] for r in session["rows"] if r["strategy"] == "least_confidence"]
    (line,) = [x for x in report.splitlines() if "least_confidence" in x]
    assert " -> ".join(f"{v:.3f}" for v in f1) in line and "labels 100..200" in line
    worst = max(a - b for a, b in zip(f1, f1[1:]))
    assert line.endswith("OK" if worst <= 0.02 else "ABOVE 2")
