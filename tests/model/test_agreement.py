"""Agreement metrics: hand-computed cases, the reference libraries on real multi-annotator data,
and the edge cases (one category only, no entities) that must read as "undefined", not 0 or 1."""
from __future__ import annotations

import math
import random

import krippendorff
import numpy as np
import pytest
from seqeval.metrics import classification_report, f1_score
from seqeval.scheme import IOB2
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import aggregate_raters
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss

from model import agreement as ag
from model.conll import read_conll
from model.human_agreement import DEFAULT_DIR, format_table, language_agreement

IAA = DEFAULT_DIR
needs_iaa = pytest.mark.skipif(not (IAA / "luo.txt").is_file(), reason="shared IAA data missing")

# 3 raters x 4 items, see the hand computations below
THREE = [["A", "A", "B", "A"], ["A", "A", "B", "B"], ["A", "B", "B", "B"]]


def test_cohen_kappa_two_raters_six_items_by_hand():
    a = ["A", "A", "B", "B", "A", "B"]
    b = ["A", "B", "B", "B", "A", "A"]
    # observed 4/6; both raters 3 A / 3 B -> expected 0.5; kappa = (2/3 - 1/2) / (1/2) = 1/3
    assert ag.cohen_kappa(a, b) == pytest.approx(1 / 3)
    conf = np.array([[2, 1], [1, 2]])
    assert ag.kappa_from_confusion(conf) == pytest.approx(1 / 3)


def test_fleiss_kappa_by_hand():
    # items AAA, AAB, BBB, ABB: P_i = 1, 1/3, 1, 1/3 -> P = 2/3; p_A = p_B = 1/2 -> Pe = 1/2
    assert ag.fleiss_kappa(THREE) == pytest.approx(1 / 3)


def test_krippendorff_alpha_by_hand_and_additive_form():
    # coincidences AA=4, BB=4, AB=BA=2, n=12 -> alpha = 1 - 11 * 4 / (144 - 72) = 7/18
    assert ag.krippendorff_alpha(THREE) == pytest.approx(7 / 18)
    o = ag.coincidence_matrix(THREE, ["A", "B"])
    assert o.tolist() == [[4, 2], [2, 4]]
    assert ag.alpha_from_coincidence(o) == pytest.approx(7 / 18)


def test_additive_forms_equal_libraries_with_missing_ratings():
    rng = random.Random(3)
    cats = ["O", "B-PER", "I-PER", "B-LOC"]
    ratings = [[rng.choice(cats) if rng.random() > 0.1 else None for _ in range(200)] for _ in range(4)]
    codes = [[np.nan if v is None else cats.index(v) for v in r] for r in ratings]
    ref = krippendorff.alpha(reliability_data=codes, level_of_measurement="nominal")
    assert ag.krippendorff_alpha(ratings) == pytest.approx(ref)
    assert ag.alpha_from_coincidence(ag.coincidence_matrix(ratings, cats)) == pytest.approx(ref)
    a, b = [rng.choice(cats) for _ in range(300)], [rng.choice(cats) for _ in range(300)]
    conf = np.zeros((4, 4))
    for x, y in zip(a, b):
        conf[cats.index(x), cats.index(y)] += 1
    assert ag.kappa_from_confusion(conf) == pytest.approx(cohen_kappa_score(a, b))


def test_one_category_only_is_undefined_not_perfect():
    same = [["O"] * 5, ["O"] * 5, ["O"] * 5]
    assert math.isnan(ag.cohen_kappa(same[0], same[1]))
    assert math.isnan(ag.fleiss_kappa(same))
    assert math.isnan(ag.krippendorff_alpha(same))
    assert ag.percent_agreement(same) == 1.0
    assert "undefined" in ag.describe_nan(ag.krippendorff_alpha(same), "alpha")
    assert ag.describe_nan(0.5) == "0.500"
    # identical but with two categories: perfectly defined
    two = [["O", "B-PER"], ["O", "B-PER"]]
    assert ag.cohen_kappa(*two) == 1.0 and ag.krippendorff_alpha(two) == 1.0


def test_zero_entities():
    gold = [["O", "O"], ["O"]]
    none = ag.entity_scores(gold, gold)
    assert math.isnan(none["f1"]) and none["support"] == 0 and none["per_type"] == {}
    fp = ag.entity_scores(gold, [["B-PER", "O"], ["O"]])
    assert fp["f1"] == 0.0 and fp["precision"] == 0.0 and math.isnan(fp["recall"])
    assert fp["per_type"]["PER"]["support"] == 0
    with pytest.raises(ValueError):
        ag.entity_scores(gold, [["O"], ["O"]])


def test_strict_iob2_entities_and_token_metrics():
    gold = [["B-PER", "I-PER", "O", "B-LOC"]]
    pred = [["B-PER", "I-PER", "O", "I-LOC"]]     # orphan I-LOC: no entity in strict mode
    s = ag.entity_scores(gold, pred)
    assert (s["precision"], s["recall"], s["f1"]) == (1.0, 0.5, pytest.approx(2 / 3))
    assert s["f1"] == pytest.approx(f1_score(gold, pred, mode="strict", scheme=IOB2))
    assert ag.token_accuracy(gold, pred) == 0.75
    assert ag.entity_token_accuracy(gold, pred) == pytest.approx(2 / 3)


def test_majority_vote_ties_and_repair():
    runs = [["B-PER", "I-PER", "O"], ["O", "I-PER", "O"], ["O", "I-PER", "B-LOC"], None]
    # token 0: O wins 2:1; token 1 I-PER after O -> repaired to B-PER; token 2: O 2:1
    assert ag.majority_vote(runs) == ["O", "B-PER", "O"]
    assert ag.majority_vote([["B-PER"], ["B-LOC"]]) == ["B-PER"]   # tie -> earliest run
    assert ag.majority_vote([None, None]) is None


def test_span_consistency_by_hand():
    sent = [["B-PER", "O"], ["B-PER", "O"], ["B-LOC", "O"], None]
    # spans: PER(0,1) in 2 of 3 successful runs, LOC(0,1) in 1 of 3 -> mean (2/3 + 1/3) / 2
    assert ag.span_consistency([sent]) == pytest.approx(0.5)
    assert ag.span_consistency([[["B-PER"], ["B-PER"]]]) == 1.0
    assert math.isnan(ag.span_consistency([[["O"], ["O"]]]))


@needs_iaa
def test_entity_scores_equal_seqeval_on_real_annotators():
    sents = read_conll(IAA / "luo.txt", columns=2)
    a, b = [list(s[1]) for s in sents], [list(s[2]) for s in sents]
    ours = ag.entity_scores(a, b)
    assert ours["f1"] == pytest.approx(f1_score(a, b, mode="strict", scheme=IOB2))
    ref = classification_report(a, b, mode="strict", scheme=IOB2, output_dict=True, zero_division=0)
    for t, v in ours["per_type"].items():
        if v["support"]:
            assert v["f1"] == pytest.approx(ref[t]["f1-score"]), t


@needs_iaa
@pytest.mark.parametrize("name", ["luo.txt", "luganda.txt"])
def test_human_table_equals_libraries_on_flattened_tags(name, tmp_path):
    path = IAA / name
    k = 2 if name == "luo.txt" else 3
    if k == 3:  # the first 400 sentences keep the 3-annotator case quick on shared cores
        blocks = path.read_text(encoding="utf-8").split("\n\n")[:400]
        path = tmp_path / name
        path.write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
    sents = read_conll(path, columns=k)
    raters = [[t for s in sents for t in s[j + 1]] for j in range(k)]
    row = language_agreement(path)
    assert row["annotators"] == k and row["tokens"] == len(raters[0])
    assert row["pairwise_kappa"]["1-2"] == pytest.approx(cohen_kappa_score(raters[0], raters[1]))
    if k == 3:
        assert row["pairwise_kappa"]["2-3"] == pytest.approx(cohen_kappa_score(raters[1], raters[2]))
    cats = sorted(set().union(*raters))
    codes = np.array([[cats.index(t) for t in r] for r in raters])
    table, _ = aggregate_raters(codes.T)
    assert row["fleiss_kappa"] == pytest.approx(sm_fleiss(table))
    assert row["alpha"] == pytest.approx(
        krippendorff.alpha(reliability_data=codes, level_of_measurement="nominal"))
    assert 0.5 < row["alpha"] <= 1.0 and 0.5 < row["f1_mean"] <= 1.0
    md = format_table([row])
    assert row["language"] in md and f"{row['alpha']:.3f}" in md


def test_raters_of_different_lengths_are_refused():
    with pytest.raises(ValueError):
        ag.krippendorff_alpha([["O", "O"], ["O"]])
    with pytest.raises(ValueError):
        ag.cohen_kappa(["O"], ["O", "O"])
    with pytest.raises(ValueError, match="complete"):
        ag.fleiss_kappa([["O", None], ["O", "B-PER"]])
