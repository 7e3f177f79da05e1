"""tag_tokens (R runs per sentence, resumable), classification, few-shot selection."""
from __future__ import annotations

import pytest

from model.llm.fewshot import FewShotSelector, load_examples
from model.spec import ChoicesControl, NERControl, TaskSpec
from model.types import Example, Span
from devtools.fakellm import start_server
from devtools.fakellm.testing import HAU_DEV, LABELS, gold_slice, make_annotator

NEWS = ["Kungiyar kwallon kafa ta Kano Pillars ta ci wasa", "Farashin man fetur ya tashi a kasuwa",
        "Likitoci sun yi gargadi kan cutar zazzabi", "Shugaban kasa ya gana da gwamnoni"]
TOPICS = ["sports", "business", "health", "politics"]
CHOICES = ChoicesControl("topic", "text", "text", ("business", "health", "politics", "sports"))


@pytest.fixture(scope="module")
def data():
    if not HAU_DEV.exists():
        pytest.skip("../shared/data/masakhaner2 not present")
    return gold_slice(6)


@pytest.fixture(scope="module")
def server(data):
    gold = dict(data[1])
    gold.update(zip(NEWS, TOPICS))
    handle = start_server(gold)
    yield handle
    handle.stop()


def test_tag_tokens_runs_resume_from_cache_and_differ_by_sample(tmp_path, server, data):
    sents = [toks for toks, _ in data[0]]
    ann = make_annotator(server.base_url, tmp_path, "noisy-0.2")
    runs = ann.tag_tokens(sents, list(LABELS), n_samples=3)
    assert len(runs) == len(sents)
    for (toks, gold), tt in zip(data[0], runs):
        assert len(tt.samples) == 3 and all(len(s) == len(toks) for s in tt.samples)
        assert tt.errors == [] and len(tt.latency_s) == 3 and len(tt.repaired) == 3
        assert tt.tokens_in > 0 and tt.cost_usd > 0
    assert any(len({tuple(s) for s in tt.samples}) > 1 for tt in runs)  # samples differ
    calls = server.stats["requests"]
    again = make_annotator(server.base_url, tmp_path, "noisy-0.2").tag_tokens(
        sents, list(LABELS), n_samples=3)  # a killed run restarts: all from the cache
    assert server.stats["requests"] == calls
    assert [t.samples for t in again] == [t.samples for t in runs]
    assert all(t.tokens_in == 0 for t in again)
    more = ann.tag_tokens(sents, list(LABELS), n_samples=2, sample_offset=3)
    assert server.stats["requests"] > calls
    assert [t.samples[0] for t in more] != [t.samples[0] for t in runs]


def test_tag_tokens_reports_failures_per_sample(tmp_path, server, data):
    sents = [toks for toks, _ in data[0][:2]]
    runs = make_annotator(server.base_url, tmp_path, "garbage").tag_tokens(
        sents, list(LABELS), n_samples=2)
    for tt in runs:
        assert tt.samples == [None, None]
        assert [e.split(":")[0] for e in tt.errors] == ["sample 0", "sample 1"]
        assert "no JSON" in tt.errors[0]
    off = make_annotator(server.base_url, tmp_path, "perfect", LLM_API_KEY="").tag_tokens(
        sents, list(LABELS), n_samples=1)
    assert off[0].samples == [None] and "LLM_API_KEY not set" in off[0].errors[0]


def test_classification_single_and_multi_label(tmp_path, server):
    ann = make_annotator(server.base_url, tmp_path, "perfect", LLM_SAMPLES=3)
    res = ann.annotate(NEWS, TaskSpec(choices=CHOICES))
    assert [r.choices[0][0] for r in res] == TOPICS
    assert all(r.error is None and 0.9 < r.score <= 1 and r.spans == [] for r in res)
    noisy = make_annotator(server.base_url, tmp_path, "noisy-0.5", LLM_SAMPLES=3).annotate(
        NEWS, TaskSpec(choices=CHOICES))
    assert min(r.score for r in noisy) < 0.9
    multi = ChoicesControl("topic", "text", "text", CHOICES.choices, multi_label=True)
    both = TaskSpec(ner=NERControl("label", "text", "text", LABELS), choices=multi)
    res = make_annotator(server.base_url, tmp_path, "unknown-tags").annotate(NEWS, both)
    assert [r.choices[0][0] for r in res] == TOPICS and all(r.repaired for r in res)
    assert res[0].spans and all(s.label in LABELS for s in res[0].spans)
    trunc = make_annotator(server.base_url, tmp_path, "truncated+prose").annotate(
        NEWS, TaskSpec(choices=CHOICES))
    assert [r.choices[0][0] for r in trunc] == TOPICS
    assert all(r.error is None and any("truncated" in x for x in r.repairs) for r in trunc)
    bad = make_annotator(server.base_url, tmp_path, "garbage").annotate(
        NEWS[:1], TaskSpec(choices=CHOICES))[0]
    assert bad.choices == [] and "classification failed: no JSON" in bad.error


def test_fewshot_nearest_examples_and_static_fallback(tmp_path):
    ex = [Example("Gwamnan jihar Kano ya isa Abuja", [Span(8, 18, "LOC"), Span(26, 31, "LOC")]),
          Example("Likitoci sun yi gargadi", []),
          Example("Shugaba Buhari ya tafi Legas", [Span(8, 14, "PER"), Span(23, 28, "LOC")])]
    sel = FewShotSelector()
    got = sel.ner("Gwamnan jihar Kaduna ya dawo", ["PER", "LOC"], ex, k=1)
    assert got[0][0][:3] == ["Gwamnan", "jihar", "Kano"] and got[0][1][1:3] == ["B-LOC", "I-LOC"]
    assert all(any(t != "O" for t in tags) for _, tags in sel.ner("x", ["PER", "LOC"], ex))
    assert sel.ner("Gwamnan jihar Kano ya isa Abuja", ["LOC"], ex[:1]) == []  # never itself
    static = tmp_path / "fewshot.conll"
    static.write_text("Musa B-PER\nya O\nzo O\n\nKano B-LOC\n", encoding="utf-8")
    assert FewShotSelector(str(static)).ner("Musa ya tafi", ["PER"], [], k=1)[0][1] == \
        ["B-PER", "O", "O"]
    with pytest.raises(ValueError, match="test split"):
        load_examples(tmp_path / "test.txt")
    from model.llm.config import ConfigError
    with pytest.raises(ConfigError, match="test split"):
        make_annotator("http://127.0.0.1:9/v1", tmp_path, LLM_FEWSHOT_FILE=HAU_DEV.parent / "test.txt")
    with pytest.raises(ConfigError, match="does not exist"):
        make_annotator("http://127.0.0.1:9/v1", tmp_path, LLM_FEWSHOT_FILE=tmp_path / "nope.conll")
