"""Parser and repair policy of model.llm.parse, fed canned replies (no server)."""
from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model.llm.parse import extract_json, normalize_label, parse_choices, parse_ner, DROP

LABELS = ["PER", "ORG", "LOC", "DATE"]
TOKS = "Gwamnan jihar Kano , Abba Yusuf , ya ce .".split()


def ents(*items, sid=0):
    return json.dumps({"sentences": [{"id": sid, "entities": [
        {"first": f, "last": la, "label": lab, "text": " ".join(TOKS[f:la + 1]) if t is None else t}
        for f, la, lab, t in items]}]})


def one(raw, toks=TOKS):
    return parse_ner(raw, {0: toks}, LABELS)[0]


def test_clean_reply_is_not_repaired():
    res = one(ents((1, 2, "LOC", None), (4, 5, "PER", None)))
    assert res.error is None and res.repairs == []
    assert res.tags == ["O", "B-LOC", "I-LOC", "O", "B-PER", "I-PER", "O", "O", "O", "O"]


@pytest.mark.parametrize("raw_label,want", [("loc", "LOC"), ("LOCATION", "LOC"), ("B-LOC", "LOC"),
                                            ("Person", "PER"), ("ORGANISATION", "ORG"),
                                            ("PERS", "PER")])
def test_unambiguous_labels_are_mapped_and_noted(raw_label, want):
    res = one(ents((1, 2, raw_label, None)))
    assert res.tags[1:3] == [f"B-{want}", f"I-{want}"]
    assert any(raw_label in r for r in res.repairs)


def test_out_of_scheme_type_means_O_and_garbage_label_is_an_error():
    res = one(ents((1, 2, "LOC", None), (8, 8, "EVENT", None)))
    assert res.tags[8] == "O" and "not in" in " ".join(res.repairs)
    bad = one(ents((1, 2, "42!", None)))
    assert bad.tags is None and "unusable label" in bad.error
    assert normalize_label("", LABELS) == (None, None)
    assert normalize_label("MONEY", LABELS)[0] is DROP


def test_off_by_one_index_is_moved_to_its_unique_text():
    res = one(ents((3, 4, "PER", "Abba Yusuf")))  # indices point at ", Abba"
    assert res.tags[4:6] == ["B-PER", "I-PER"] and "moved" in res.repairs[0]


def test_ambiguous_or_impossible_indices_are_errors():
    toks = "Kano da Kano".split()
    res = parse_ner(json.dumps({"entities": [{"first": 1, "last": 1, "label": "LOC",
                                              "text": "Kano"}]}), {0: toks}, LABELS)[0]
    assert res.tags is None and "several times" in res.error
    res = one(ents((20, 21, "LOC", "")))
    assert res.tags is None and "outside 0..9" in res.error
    res = one(ents((1, 2, "LOC", None), (2, 2, "PER", "Kano")))
    assert res.tags is None and "overlap" in res.error


def test_prose_and_fences_are_stripped_and_noted():
    raw = "Here you go:\n```json\n" + ents((1, 2, "LOC", None)) + "\n```\nAnything else?"
    res = one(raw)
    assert res.tags[1] == "B-LOC" and "code fence" in res.repairs[0]
    value, notes, err = extract_json("The answer is " + ents() + " as requested")
    assert err is None and value["sentences"][0]["entities"] == [] and "prose" in notes[0]
    assert extract_json("no json here")[2] == "no JSON object found in the reply"
    assert extract_json("")[2] == "empty reply"


def test_pair_format_alignment_and_missing_tokens():
    pairs = [[t, g] for t, g in zip(TOKS, ["O", "B-LOC", "I-LOC", "O", "B-PER", "I-PER",
                                          "O", "O", "O", "O"])]
    ok = one(json.dumps({"output": pairs}))
    assert ok.error is None and ok.tags[4] == "B-PER"
    no_comma = one(json.dumps({"output": pairs[:3] + pairs[4:]}))  # punctuation skipped
    assert no_comma.tags[3] == "O" and "filled with O" in no_comma.repairs[-1]
    first = one(json.dumps({"output": pairs[:4] + pairs[5:]}))  # drops "Abba" (B-PER)
    assert first.tags is None and "cannot be inferred" in first.error
    last = one(json.dumps({"output": pairs[:2] + pairs[3:]}))  # "Kano": I-LOC or O?
    assert last.tags is None
    toks = ["A", "Bayero", "University", "Kano", "."]
    tags = ["O", "B-ORG", "I-ORG", "I-ORG", "O"]
    mid = one(json.dumps({"output": [[t, g] for t, g in zip(toks, tags)][:2] +
                                    [[t, g] for t, g in zip(toks, tags)][3:]}), toks)
    assert mid.tags == tags and "filled with I-ORG" in mid.repairs[-1]
    word = one(json.dumps({"output": pairs[:7] + pairs[8:]}))  # a word between O tokens
    assert word.tags is None


def test_i_without_b_and_bare_types_are_fixed():
    tags = ["O", "I-LOC", "I-LOC", "O", "PER", "PER", "O", "O", "o", "O"]
    res = one(json.dumps({"tags": tags}))
    assert res.tags[1:6] == ["B-LOC", "I-LOC", "O", "B-PER", "I-PER"]
    assert res.tags[8] == "O"
    wrong = one(json.dumps({"tags": tags[:-1]}))
    assert wrong.tags is None and "9 tags for 10 tokens" in wrong.error


def test_batch_reply_reports_missing_sentences_and_ignores_strangers():
    toks2 = ["Abuja"]
    raw = json.dumps({"sentences": [{"id": 1, "entities": [{"first": 0, "last": 0, "label": "LOC",
                                                             "text": "Abuja"}]},
                                    {"id": 7, "entities": []}]})
    out = parse_ner(raw, {0: TOKS, 1: toks2}, LABELS)
    assert out[1].tags == ["B-LOC"]
    assert out[0].tags is None and "missing" in out[0].error


def test_choices():
    assert parse_choices('{"label": "Sports"}', ["sports", "health"], False).labels == ["sports"]
    multi = parse_choices('{"labels": ["health", "sports", "health"]}', ["sports", "health"], True)
    assert multi.labels == ["health", "sports"]
    bad = parse_choices('{"label": "weather"}', ["sports", "health"], False)
    assert bad.labels is None and "not one of" in bad.error
    two = parse_choices('{"labels": ["health", "sports"]}', ["sports", "health"], False)
    assert two.labels is None and "one label expected" in two.error


_json = st.recursive(
    st.none() | st.booleans()
    | st.integers(-3, 12)
    | st.sampled_from(["PER", "loc", "B-ORG", "EVENT", "Kano",
                                                        "", "O", "I-PER", "jihar Kano"]),
    lambda kids: st.lists(kids, max_size=5)
    | st.dictionaries(
        st.sampled_from(
            ["sentences", "id", "entities", "first", "last", "label", "text", "output", "tags",
             "i", "tag"]), kids, max_size=5),
    max_leaves=25)


@given(value=_json, prose=st.booleans())
@settings(max_examples=300, deadline=None)
def test_any_reply_gives_one_verdict_per_sentence(value, prose):
    """Whatever comes back, every sentence gets tags of the right length or an error."""
    raw = json.dumps(value)
    if prose:
        raw = f"Sure:\n```json\n{raw}\n```"
    out = parse_ner(raw, {0: TOKS, 1: ["Abuja", "."]}, LABELS)
    assert set(out) == {0, 1}
    for sid, res in out.items():
        toks = TOKS if sid == 0 else ["Abuja", "."]
        assert (res.tags is None) != (res.error is None)
        if res.tags is not None:
            assert len(res.tags) == len(toks)
            assert all(t == "O" or t[2:] in LABELS for t in res.tags)
            assert all(not t.startswith("I-") or (i and res.tags[i - 1][2:] == t[2:])
                       for i, t in enumerate(res.tags))
