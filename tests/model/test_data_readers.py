"""Data readers validate what they read: quoted multi-line MasakhaNEWS fields parse as one article,
anything malformed fails naming the file and line (never garbage read silently)."""
from __future__ import annotations

import json

import pytest

from model.conll import DataFileError, read_conll, read_news_tsv
from model.llm.fewshot import load_examples
from tests.conftest import SHARED

NEWS = SHARED / "data" / "masakhanews"
# article counts of the MasakhaNEWS release (train, dev, test)
NEWS_COUNTS = {"ibo": (1356, 194, 390), "lug": (771, 110, 223), "pcm": (1060, 152, 305),
               "sna": (1288, 185, 369), "yor": (1433, 206, 411)}
HEADER = "category\theadline\ttext\turl\n"


def _tsv(tmp_path, body: str, labels: str | None = "sports\npolitics\n", name: str = "train.tsv"):
    d = tmp_path / "news"
    d.mkdir(exist_ok=True)
    if labels is not None:
        (d / "labels.txt").write_text(labels, encoding="utf-8")
    p = d / name
    p.write_text(HEADER + body, encoding="utf-8")
    return p


def test_quoted_multiline_fields_are_one_article(tmp_path):
    p = _tsv(tmp_path, 'sports\t"Two\nline headline"\t"""Quoted"" start,\nsecond line\n\nthird"\thttp://a\n'
                       "politics\tplain\tbody with a 'single' quote\thttp://b\n")
    texts, labels = read_news_tsv(p)
    assert labels == ["sports", "politics"]
    assert texts[0] == 'Two\nline headline\n"Quoted" start,\nsecond line\n\nthird'
    assert texts[1] == "plain\nbody with a 'single' quote"


def test_category_outside_labels_txt_names_file_and_line(tmp_path):
    p = _tsv(tmp_path, 'sports\th\t"a\nb"\tu\nfootball\th\tt\tu\n')
    with pytest.raises(DataFileError) as e:
        read_news_tsv(p)
    assert str(e.value).startswith(f"{p}:4:") and "'football' is not in labels.txt" in str(e.value)


def test_row_with_wrong_field_count_is_refused(tmp_path):
    p = _tsv(tmp_path, "sports\th\tt\tu\nsports\th\tt with\ta tab\tu\n")
    with pytest.raises(DataFileError, match=r":3: 5 fields, the header has 4"):
        read_news_tsv(p)


def test_unterminated_quote_is_refused_not_swallowed(tmp_path):
    # QUOTE_NONE read this as garbage articles; a quote never closed must not eat the rest of the file
    p = _tsv(tmp_path, 'sports\th\t"never closed\tu\npolitics\th\tt\tu\n')
    with pytest.raises(DataFileError, match=r"train.tsv:2: "):
        read_news_tsv(p)


def test_text_fragment_as_category_is_refused_without_labels_txt(tmp_path):
    p = _tsv(tmp_path, "sports\th\tt\tu\nand then he said\th\tt\tu\n", labels=None)
    with pytest.raises(DataFileError, match=r":3: category 'and then he said' is not a label"):
        read_news_tsv(p)


def test_header_without_required_columns(tmp_path):
    p = tmp_path / "x.tsv"
    p.write_text("label\tbody\nsports\tt\n", encoding="utf-8")
    with pytest.raises(DataFileError, match=r"x.tsv:1: .*lacks column\(s\) category, headline, text"):
        read_news_tsv(p)


@pytest.mark.skipif(not NEWS.is_dir(), reason="../shared/data/masakhanews not present")
@pytest.mark.parametrize("lang", sorted(NEWS_COUNTS))
def test_every_masakhanews_language_reads_its_article_count(lang):
    for split, n in zip(("train", "dev", "test"), NEWS_COUNTS[lang]):
        texts, labels = read_news_tsv(NEWS / lang / f"{split}.tsv")
        assert len(texts) == len(labels) == n, (lang, split, len(texts))
        allowed = set((NEWS / lang / "labels.txt").read_text(encoding="utf-8").split())
        assert set(labels) == allowed


def test_conll_bad_tag_and_extra_column_name_the_line(tmp_path):
    p = tmp_path / "a.conll"
    p.write_text("Musa B-PER\nya O\n\nje X-LOC\n", encoding="utf-8")
    with pytest.raises(DataFileError, match=r"a.conll:4: tag 'X-LOC' is not BIO"):
        read_conll(p)
    p.write_text("Musa B-PER O\n", encoding="utf-8")
    with pytest.raises(DataFileError, match=r"a.conll:1: 2 tag columns, expected at most 1"):
        read_conll(p)
    assert read_conll(p, columns=2) == [(["Musa"], ["B-PER"], ["O"])]
    p.write_text("Musa\nya\n", encoding="utf-8")  # untagged token list (annotate CLI input)
    assert read_conll(p) == [(["Musa", "ya"], ["O", "O"])]


@pytest.mark.parametrize("line, problem", [
    ('{"tokens": ["a", "b"], "tags": ["O"]', "not valid JSON"),
    ('["a", "b"]', "expected a JSON object, got list"),
    ('{"tokens": ["a", "b"], "tags": ["O"]}', "one tag per token (2)"),
    ('{"tokens": ["a"], "tags": ["PER"]}', "tag 'PER' is not BIO"),
    ('{"text": "Musa ya je", "spans": [[0, 40, "PER"]]}', "span [0, 40, 'PER'] is not [start, end, label]"),
    ('{"text": "Musa", "choices": "sports"}', '"choices" must be a list'),
    ('{"headline": "x"}', 'expected "tokens" (with "tags") or a non-empty string "text"'),
])
def test_fewshot_jsonl_fails_with_file_and_line(tmp_path, line, problem):
    p = tmp_path / "shots.jsonl"
    good = json.dumps({"tokens": ["Musa", "ya", "je"], "tags": ["B-PER", "O", "O"]})
    p.write_text(good + "\n\n" + line + "\n", encoding="utf-8")
    with pytest.raises(DataFileError) as e:
        load_examples(p)
    assert str(e.value).startswith(f"{p}:3: ") and problem in str(e.value)


def test_fewshot_jsonl_valid_forms(tmp_path):
    p = tmp_path / "shots.jsonl"
    p.write_text(json.dumps({"tokens": ["Musa", "ya", "je"], "tags": ["B-PER", "O", "O"]}) + "\n"
                 + json.dumps({"text": "Musa ya je", "spans": [[0, 4, "PER"]], "choices": ["sports"]}) + "\n",
                 encoding="utf-8")
    a, b = load_examples(p)
    assert (a.text, [(s.start, s.end, s.label) for s in a.spans]) == ("Musa ya je", [(0, 4, "PER")])
    assert (b.choices, [(s.start, s.end, s.label) for s in b.spans]) == (["sports"], [(0, 4, "PER")])


def test_bytes_that_are_not_utf8_are_a_data_file_error(tmp_path):
    conll = tmp_path / "a.conll"
    conll.write_bytes(b"Musa B-PER\n\xff\xfe O\n")
    with pytest.raises(DataFileError, match="not UTF-8"):
        read_conll(conll)
    tsv = _tsv(tmp_path, "sports\th\tt\tu\n")
    tsv.write_bytes(tsv.read_bytes() + b"sports\t\xc3\x28\tt\tu\n")
    with pytest.raises(DataFileError, match="not UTF-8"):
        read_news_tsv(tsv)
    shots = tmp_path / "s.jsonl"
    shots.write_bytes(b'{"text": "a"}\n{"text": "\xff"}\n')
    with pytest.raises(DataFileError, match=r"s.jsonl:2: not UTF-8"):
        load_examples(shots)
