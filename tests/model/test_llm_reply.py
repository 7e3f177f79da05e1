"""The reply normaliser and the parser rules of issue 20, each fed a reply in the style real models
send (reasoning drafts, Python literals, OntoNotes labels, folded diacritics, id-less objects,
truncation). No server: these are pure functions."""
from __future__ import annotations

import json

from model.llm.parse import fold, normalize_label, parse_choices, parse_ner
from model.llm.reply import extract_json

LABELS = ["PER", "ORG", "LOC", "DATE"]
TOKS = "Shugaba Bédié ya isa Côte d'Ivoire ranar Litinin .".split()
GOLD = ["O", "B-PER", "O", "O", "B-LOC", "I-LOC", "B-DATE", "I-DATE", "O"]
ANSWER = {"sentences": [{"id": 0, "entities": [
    {"first": 1, "last": 1, "label": "PER", "text": "Bédié"},
    {"first": 4, "last": 5, "label": "LOC", "text": "Côte d'Ivoire"},
    {"first": 6, "last": 7, "label": "DATE", "text": "ranar Litinin"}]}]}


def one(raw, toks=TOKS, **kw):
    return parse_ner(raw, {0: toks}, LABELS, **kw)[0]


def test_reasoning_block_with_a_draft_is_removed_before_parsing():
    # DeepSeek-R1 style: a draft JSON (with a mistake) inside <think>, the answer after it
    draft = json.dumps({"sentences": [{"id": 0, "entities": [
        {"first": 1, "last": 1, "label": "ORG", "text": "Bédié"}]}]})
    raw = (f"<think>\nOkay, the user wants entities. Let me draft:\n{draft}\nWait, Bédié is a "
           f"person, and Côte d'Ivoire is a place.\n</think>\n\n{json.dumps(ANSWER)}")
    res = one(raw)
    assert res.error is None and res.tags == GOLD
    assert "reasoning block removed before parsing" in res.repairs


def test_lone_closing_think_tag_and_reasoning_tag():
    # Qwen3 when the chat template already opened <think> in the prompt
    raw = 'the first entity is {"first": 1} hmm\n</think>\n' + json.dumps(ANSWER)
    assert one(raw).tags == GOLD
    raw = "<reasoning>Bédié -> PER</reasoning>```json\n" + json.dumps(ANSWER) + "\n```"
    assert one(raw).tags == GOLD


def test_reasoning_content_field_is_used_only_when_content_has_no_answer():
    res = one("", reasoning="Thinking... final: " + json.dumps(ANSWER))
    assert res.tags == GOLD and any("from the reasoning" in r for r in res.repairs)
    res = one(json.dumps(ANSWER), reasoning='draft {"sentences": [{"id": 0, "entities": []}]}')
    assert res.tags == GOLD and not any("reasoning" in r for r in res.repairs)
    assert "only reasoning" in one("<think>Let me count the tokens").error


def test_last_complete_answer_wins_over_an_earlier_draft_in_prose():
    draft = {"sentences": [{"id": 0, "entities": []}]}
    raw = (f"First attempt: {json.dumps(draft)}\nOn reflection I missed three entities. "
           f"Corrected answer:\n{json.dumps(ANSWER)}\nExample entity format: "
           '{"first": 0, "last": 0, "label": "PER"}')
    res = one(raw)
    assert res.tags == GOLD
    assert any("last of 2" in r for r in res.repairs)


def test_python_literal_reply_single_quotes_trailing_commas_true_none():
    raw = ("{'sentences': [{'id': 0, 'entities': [{'first': 1, 'last': 1, 'label': 'PER', "
           "'text': 'Bédié', 'confident': True, 'note': None,}, {'first': 4, 'last': 5, "
           "'label': 'LOC', 'text': \"Côte d'Ivoire\"}, {'first': 6, 'last': 7, 'label': "
           "'DATE', 'text': 'ranar Litinin'},],},],}")
    res = one(raw)
    assert res.error is None and res.tags == GOLD
    assert "Python literal read as JSON" in res.repairs


def test_python_literal_is_never_evaluated():
    raw = "{'sentences': [__import__('os').system('echo pwned')]}"
    value, _, err = extract_json(raw)
    assert err is not None and value is None


def test_fences_with_any_language_tag():
    for tag in ("json", "JSON", "python", "javascript", "", "json5"):
        raw = f"Here it is:\n```{tag}\n{json.dumps(ANSWER)}\n```\n"
        assert one(raw).tags == GOLD, tag


def test_ontonotes_and_other_label_synonyms():
    for raw_label, want in [("GPE", "LOC"), ("NORP", "LOC"), ("FAC", "LOC"), ("LOCATION", "LOC"),
                            ("PERSON", "PER"), ("ORGANIZATION", "ORG"), ("ORG_NAME", "ORG"),
                            ("DATE_TIME", "DATE"), ("TIME", "DATE"), ("B-GPE", "LOC"),
                            ("gpe", "LOC"), ("DATE-TIME", "DATE")]:
        assert normalize_label(raw_label, LABELS)[0] == want, raw_label
    # TIME only maps to DATE where the project has DATE
    assert normalize_label("TIME", ["PER", "LOC"])[0] is not "DATE"  # noqa: F632


def test_project_label_map_overrides_and_unknown_labels_are_counted():
    ans = {"sentences": [{"id": 0, "entities": [
        {"first": 1, "last": 1, "label": "HUMAN", "text": "Bédié"},
        {"first": 4, "last": 5, "label": "GPE", "text": "Côte d'Ivoire"},
        {"first": 6, "last": 7, "label": "EVENT", "text": "ranar Litinin"}]}]}
    res = one(json.dumps(ans))
    assert res.tags == ["O", "O", "O", "O", "B-LOC", "I-LOC", "O", "O", "O"]
    assert sorted(res.unknown_labels) == ["EVENT", "HUMAN"]
    res = one(json.dumps(ans), label_map={"human": "PER", "EVENT": "DATE", "GPE": "O"})
    assert res.tags == ["O", "B-PER", "O", "O", "O", "O", "B-DATE", "I-DATE", "O"]
    assert res.unknown_labels == ["GPE"]  # mapped to O by the project: still counted


def test_folded_diacritics_apostrophes_and_hook_letters_are_repairs():
    assert fold("Bédié") == fold("Bedie") and fold("d'Ivoire") == fold("dʼIvoire") == fold("d’Ivoire")
    assert fold("Ƙano") == fold("Kano") and fold("ɗan") == fold("dan") and fold("ɓera") == fold("bera")
    ans = {"sentences": [{"id": 0, "entities": [
        {"first": 1, "last": 1, "label": "PER", "text": "Bedie"},
        {"first": 4, "last": 5, "label": "LOC", "text": "Cote dʼIvoire"},
        {"first": 6, "last": 7, "label": "DATE", "text": "ranar Litinin"}]}]}
    res = one(json.dumps(ans, ensure_ascii=False))
    assert res.error is None and res.tags == GOLD
    assert sum("folded" in r for r in res.repairs) == 2
    # a folded text at the wrong indexes is moved where it is (once)
    ans["sentences"][0]["entities"][0].update(first=2, last=2)
    assert one(json.dumps(ans, ensure_ascii=False)).tags == GOLD
    toks = "Ɗan Ƙano ya ce .".split()
    raw = json.dumps({"sentences": [{"id": 0, "entities": [
        {"first": 0, "last": 1, "label": "PER", "text": "Dan Kano"}]}]})
    assert one(raw, toks).tags == ["B-PER", "I-PER", "O", "O", "O"]


def test_one_sentence_reply_without_id_is_not_a_tag_list():
    body = {"entities": ANSWER["sentences"][0]["entities"]}
    for raw in (json.dumps({"sentences": [body]}), json.dumps([body]), json.dumps(body)):
        res = one(raw)
        assert res.error is None and res.tags == GOLD, raw


def test_batch_without_ids_matched_by_order_only_when_the_count_matches():
    other = "Abuja babban birni ne .".split()
    body0 = {"entities": ANSWER["sentences"][0]["entities"]}
    body1 = {"entities": [{"first": 0, "last": 0, "label": "LOC", "text": "Abuja"}]}
    out = parse_ner(json.dumps({"sentences": [body0, body1]}), {0: TOKS, 1: other}, LABELS)
    assert out[0].tags == GOLD and out[1].tags == ["B-LOC", "O", "O", "O", "O"]
    assert any("matched by order" in r for r in out[1].repairs)
    out = parse_ner(json.dumps({"sentences": [body1]}), {0: TOKS, 1: other}, LABELS)
    assert out[0].tags is None and out[1].tags is None  # one object for two: cannot tell which


def test_truncated_batch_gives_its_complete_sentence_objects():
    other = "Abuja babban birni ne .".split()
    full = json.dumps({"sentences": [
        ANSWER["sentences"][0],
        {"id": 1, "entities": [{"first": 0, "last": 0, "label": "LOC", "text": "Abuja"}]},
        {"id": 2, "entities": [{"first": 0, "last": 0, "label": "PER", "text": "Musa"}]}]})
    cut = full[:full.index('"Abuja"') + 3]  # inside sentence 1
    out = parse_ner(cut, {0: TOKS, 1: other, 2: ["Musa", "."]}, LABELS, salvage=True)
    assert out[0].tags == GOLD and any("salvaged" in r for r in out[0].repairs)
    assert out[1].tags is None and "missing" in out[1].error
    assert out[2].tags is None
    # a cut reply not flagged as truncated: the last complete sentence object still answers
    out = parse_ner(cut, {0: TOKS, 1: other}, LABELS)
    assert out[0].tags == GOLD and "missing" in out[1].error


def test_choices_after_reasoning_and_as_python_literal():
    raw = "<think>sports? no, politics</think>{'label': 'politics'}"
    res = parse_choices(raw, ["politics", "sports"], False)
    assert res.labels == ["politics"]
    res = parse_choices('draft {"label": "sports"} final {"label": "politics"}',
                        ["politics", "sports"], False)
    assert res.labels == ["politics"]


def test_pathological_replies_are_bounded_not_a_crash():
    import time

    for raw in ('{"a": [' * 2000, "[" * 5000 + "]" * 5000, "{'x' " * 3000):
        t0 = time.perf_counter()
        out = parse_ner(raw, {0: TOKS}, LABELS)[0]  # deep nesting once raised RecursionError
        assert out.tags is None and out.error
        assert time.perf_counter() - t0 < 20
