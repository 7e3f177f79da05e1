"""model/tokenize.py: exact offsets on the scripts our annotators actually type."""
from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model.tokenize import bio_to_spans, join_tokens, spans_to_bio, tokenize
from model.types import Span


def words(text: str) -> list[str]:
    return [t.text for t in tokenize(text)]


def assert_offsets(text: str) -> None:
    toks = tokenize(text)
    for t in toks:
        assert text[t.start:t.end] == t.text
    assert all(a.end <= b.start for a, b in zip(toks, toks[1:]))
    # nothing but whitespace is dropped
    covered = "".join(t.text for t in toks)
    assert covered == "".join(ch for ch in text if not ch.isspace())


YORUBA = "Abíọ́lá lọ sí Ìbàdàn ní ọjọ́ Ajé."


@pytest.mark.parametrize("form", ["NFC", "NFD"])
def test_yoruba_tone_marks_stay_inside_words(form):
    text = unicodedata.normalize(form, YORUBA)
    assert_offsets(text)
    got = words(text)
    assert [unicodedata.normalize("NFC", w) for w in got] == \
        ["Abíọ́lá", "lọ", "sí", "Ìbàdàn", "ní", "ọjọ́", "Ajé", "."]


def test_nfd_offsets_index_the_original_string():
    text = unicodedata.normalize("NFD", "Ọba Ṣàngó")
    toks = tokenize(text)
    assert len(text) > len("Ọba Ṣàngó")  # combining marks are separate code points here
    assert [text[t.start:t.end] for t in toks] == [t.text for t in toks]
    assert toks[1].end == len(text)


def test_hausa_hooked_letters_and_apostrophe_y():
    text = "'Yan sanda sun kama ɗan ƙasar Ɓauchi a Jami'ar Bayero."
    assert_offsets(text)
    assert words(text) == ["'Yan", "sanda", "sun", "kama", "ɗan", "ƙasar", "Ɓauchi", "a",
                           "Jami'ar", "Bayero", "."]
    assert words("ʼyan’uwa") == ["ʼyan’uwa"]  # typographic apostrophes too


def test_punctuation_glued_to_words():
    text = "Kano, Lagos; (Abuja) \"Nairobi\"! 2023-01-05 co-operative -x"
    assert_offsets(text)
    assert words(text) == ["Kano", ",", "Lagos", ";", "(", "Abuja", ")", '"', "Nairobi", '"',
                           "!", "2023-01-05", "co-operative", "-", "x"]


def test_emoji_and_mixed_scripts():
    text = "Musa 👍🏾 yace سلام مرحبا and 你好, Ṣadé🙂!"
    assert_offsets(text)
    got = words(text)
    assert "سلام" in got and "مرحبا" in got and "你好" in got
    assert "Ṣadé" in got and "🙂" in got
    assert "Musa" in got and "yace" in got


def test_empty_and_whitespace_only():
    assert tokenize("") == []
    assert tokenize(" \n\t\u00a0 ") == []


def test_join_tokens_and_bio_round_trip():
    sent = ["Ṣadé", "lọ", "sí", "Ìbàdàn", "ní", "Jami'ar", "Bayero", "."]
    tags = ["B-PER", "O", "O", "B-LOC", "O", "B-ORG", "I-ORG", "O"]
    text, toks = join_tokens(sent)
    assert [text[t.start:t.end] for t in toks] == sent
    spans = bio_to_spans(toks, tags)
    assert [(text[s.start:s.end], s.label) for s in spans] == \
        [("Ṣadé", "PER"), ("Ìbàdàn", "LOC"), ("Jami'ar Bayero", "ORG")]
    assert spans_to_bio(toks, spans) == tags
    # the same spans over the re-tokenized text
    assert spans_to_bio(tokenize(text), spans) == tags


def test_span_inside_glued_token_widens_to_token():
    text = "Ya je Kano, jiya."
    toks = tokenize(text)
    start = text.index("Kan")
    assert spans_to_bio(toks, [Span(start, start + 3, "LOC")]) == ["O", "O", "B-LOC", "O", "O", "O"]


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("abcÀàẹ́ọ̀ƙɗɓ'’- ,.!?😀\u0301\u0300\u0323 \n")) |
               st.characters(), max_size=60))
def test_offsets_round_trip_on_any_text(text):
    assert_offsets(text)
