"""Annotator selection: sampler, candidate files, the choice rule, the report, and the whole run
(a stub annotator for the bookkeeping, then the real ``LLMAnnotator`` against the fake
OpenAI-compatible server in ``devtools/fakellm``)."""
from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest

from model.selection import (Candidate, CandidateError, ChoiceRule, GoldSample, choose,
                             load_candidates, parse_candidates, run_selection, sample_gold)
from model.selection import run as run_mod
from model.selection.evaluate import evaluate
from model.sampling import entity_rich_indices, entity_share
from model.shared_data import MASAKHANER2

ROOT = Path(__file__).resolve().parents[2]
HAU_DEV = MASAKHANER2 / "hau" / "dev.txt"


# ------------------------------------------------------------------ sampler
def _synthetic_pool(n=400, seed=0):
    rng = random.Random(seed)
    pool = []
    for s in range(n):
        length = rng.randint(5, 30)
        k = rng.randint(0, length)
        tags = ["B-PER"] * k + ["O"] * (length - k)
        rng.shuffle(tags)
        pool.append(([f"s{s}w{i}" for i in range(length)], tags))
    return pool


def test_entity_rich_sampler_filters_and_is_reproducible():
    pool = _synthetic_pool()
    sample, info = sample_gold(pool, 40, sampler="entity-rich", seed=42)
    assert len(sample) == 40 == info.drawn and info.shortfall == 0
    assert len(set(info.indices)) == 40
    assert all(0.05 < entity_share(tags) < 0.5 for _, tags in sample)
    assert info.eligible == sum(0.05 < entity_share(t) < 0.5 for _, t in pool)
    again, info2 = sample_gold(pool, 40, sampler="entity-rich", seed=42)
    assert info2.indices == info.indices
    assert sample_gold(pool, 40, seed=7)[1].indices != info.indices


def test_entity_rich_sampler_favours_the_middle_of_the_entity_count_ranking():
    pool = _synthetic_pool(600)
    tags = [t for _, t in pool]
    eligible = [i for i, t in enumerate(tags) if 0.05 < entity_share(t) < 0.5]
    counts = {i: sum(x != "O" for x in tags[i]) for i in eligible}
    ranked = sorted(eligible, key=lambda i: -counts[i])
    pos = {i: p / (len(ranked) - 1) for p, i in enumerate(ranked)}
    picks = [pos[i] for s in range(20) for i in entity_rich_indices(tags, 20, seed=s)[0]]
    middle = sum(0.25 <= p <= 0.75 for p in picks) / len(picks)
    tails = sum(p < 0.1 or p > 0.9 for p in picks) / len(picks)
    assert middle > 0.6 and tails < 0.1      # uniform would give 0.5 and 0.2


def test_sampler_shortfall_random_and_errors():
    pool = _synthetic_pool(30)
    sample, info = sample_gold(pool, 1000, sampler="entity-rich")
    assert info.shortfall == 1000 - len(sample) and len(sample) == info.eligible
    rnd, rinfo = sample_gold(pool, 10, sampler="random", seed=1)
    assert len(set(rinfo.indices)) == 10 and rinfo.eligible == 30
    with pytest.raises(ValueError, match="expected one of"):
        sample_gold(pool, 5, sampler="clever")


# ------------------------------------------------------------------ candidates
def test_candidate_files_yaml_json_and_no_secrets(tmp_path):
    cands = load_candidates(ROOT / "examples" / "candidates.yaml")
    assert len(cands) >= 3 and all(c.base_url and c.model for c in cands)
    j = tmp_path / "c.json"
    j.write_text(json.dumps([{"name": "a", "base_url": "http://x/v1", "model": "m",
                              "api_key_env": "A_KEY", "price_in_per_1k": 0.5, "max_tokens": 512}]))
    (c,) = load_candidates(j)
    assert c.options == {"max_tokens": 512}
    env = c.env({"A_KEY": "sk-secret-123"})
    assert env["LLM_API_KEY"] == "sk-secret-123" and env["LLM_MAX_TOKENS"] == "512"
    assert "sk-secret" not in json.dumps(c.public_dict())
    with pytest.raises(CandidateError) as exc:
        parse_candidates([{"name": "b", "base_url": "u", "model": "m", "api_key": "sk-leak-999"}])
    assert "sk-leak" not in str(exc.value) and "api_key_env" in str(exc.value)
    with pytest.raises(CandidateError, match="duplicate"):
        parse_candidates([{"name": "b", "base_url": "u", "model": "m"}] * 2)
    with pytest.raises(CandidateError, match="lacks 'model'"):
        parse_candidates({"candidates": [{"name": "b", "base_url": "u"}]})


# ------------------------------------------------------------------ rule
def _m(f1, alpha=0.95, fail=0.0, cost=1.0, agree=None):
    return {"f1_mean": f1, "f1_majority": f1, "alpha_runs": alpha, "format_failure_rate": fail,
            "cost_per_1k_usd": cost, "percent_agreement_runs": agree if agree is not None else 0.99}


def test_rule_picks_best_eligible_and_explains_losers():
    d = choose({"good": _m(0.80), "worse": _m(0.70), "shaky": _m(0.90, alpha=0.6),
                "broken": _m(0.85, fail=0.2), "pricey": _m(0.95, cost=50)},
               ChoiceRule(max_cost_per_1k=10))
    assert d.winner == "good"
    by = {r.name: r for r in d.ranking}
    assert [r.name for r in d.ranking][:2] == ["good", "worse"]
    assert by["worse"].reasons == ["entity F1 10.0 points lower than good (70.0 vs 80.0)"]
    assert "alpha 0.600 < 0.8" in by["shaky"].reasons[0] and not by["shaky"].eligible
    assert "format-failure rate 20.0% > 5%" in by["broken"].reasons[0]
    assert "> cap $10" in by["pricey"].reasons[0]
    assert by["good"].reasons == [] and by["good"].rank == 1


def test_rule_tie_goes_to_the_cheaper_and_no_winner_when_all_fail():
    d = choose({"a": _m(0.800, cost=5.0), "b": _m(0.797, cost=1.0), "c": _m(0.79, cost=0.1)})
    assert d.winner == "b"                     # within 0.5 points of a, and cheaper
    a = next(r for r in d.ranking if r.name == "a")
    assert "tied on F1" in a.reasons[0] and "$4.0000 more" in a.reasons[0]
    assert choose({"a": _m(0.8, cost=5.0), "b": _m(0.797, cost=1.0)}, ChoiceRule(tie_points=0.1)).winner == "a"
    none = choose({"x": _m(0.9, alpha=0.1), "y": _m(0.9, fail=0.5)})
    assert none.winner is None and all(r.reasons for r in none.ranking)
    # undefined alpha: passes only when the runs agree perfectly
    assert choose({"z": _m(0.9, alpha=math.nan, agree=1.0)}).winner == "z"
    assert choose({"z": _m(0.9, alpha=math.nan, agree=0.9)}).winner is None
    with pytest.raises(ValueError, match="expected one of"):
        ChoiceRule(f1_key="f2")


# ------------------------------------------------------------------ evaluate
def test_evaluate_figures_on_a_hand_sized_case():
    gold = [["B-PER", "I-PER", "O"], ["O", "B-LOC"]]
    perfect = {"samples": [[g, g, g] for g in gold], "tokens_in": 300, "tokens_out": 60, "cost_usd": 0.006,
               "latency_s": [[0.1, 0.2, 0.3], [0.1, 0.2, 0.3]], "repaired": [[False, True, False], [False] * 3]}
    m = evaluate(gold, perfect, n_boot=200)
    assert m["f1_mean"] == 1.0 and m["f1_majority"] == 1.0 and m["token_accuracy_mean"] == 1.0
    assert m["alpha_runs"] == 1.0 and m["fleiss_kappa_runs"] == 1.0 and m["kappa_gold_mean"] == 1.0
    assert m["span_consistency"] == 1.0 and m["format_failure_rate"] == 0.0
    assert m["repair_rate"] == pytest.approx(1 / 6)
    assert m["cost_per_1k_usd"] == pytest.approx(0.006 / 6 * 1000)
    assert m["tokens_in_per_1k"] == pytest.approx(50_000)
    failing = {"samples": [[gold[0], None, gold[0]], [["O", "O"], None, gold[1]]]}
    f = evaluate(gold, failing, n_boot=200)
    assert f["format_failure_rate"] == pytest.approx(2 / 6) and f["fleiss_sentences_used"] == 0
    assert math.isnan(f["fleiss_kappa_runs"]) and f["sentences_failed_any_run"] == 2
    # run 2 lost both sentences -> scored all-O: F1 0 for that run
    assert f["f1_runs"][1] == 0.0 and f["f1_mean"] < 1.0


def test_bootstrap_ci_brackets_the_estimate():
    rng = random.Random(0)
    gold = [["B-PER", "I-PER", "O", "B-LOC", "O"] for _ in range(30)]
    noisy = [[[t if rng.random() > 0.15 else "O" for t in g] for _ in range(3)] for g in gold]
    m = evaluate(gold, {"samples": noisy}, n_boot=300, seed=1)
    for key, ci in (("f1_mean", "f1_ci"), ("kappa_gold_mean", "kappa_gold_ci"),
                    ("alpha_runs", "alpha_runs_ci"), ("fleiss_kappa_runs", "fleiss_kappa_runs_ci"),
                    ("f1_majority", "f1_majority_ci")):
        lo, hi = m[ci]
        assert lo <= m[key] <= hi and hi - lo < 0.5, key
    assert evaluate(gold, {"samples": noisy}, n_boot=300, seed=1)["f1_ci"] == m["f1_ci"]


# ------------------------------------------------------------------ the run, with a stub annotator
class _TT:
    def __init__(self, tags, tokens_in=100, tokens_out=20):
        self.samples, self.errors, self.repaired = [tags], [], [False]
        self.latency_s, self.tokens_in, self.tokens_out = [0.01], tokens_in, tokens_out
        self.cost_usd = tokens_in / 1000 * 0.01 + tokens_out / 1000 * 0.03


class _StubAnnotator:
    """Stands in for LLMAnnotator: 'good' copies gold, 'bad' drops every entity; counts calls."""

    calls: list = []
    fail_at: tuple | None = None

    def __init__(self, cand, gold_by_tokens):
        self.cand, self.gold = cand, gold_by_tokens

    def tag_tokens(self, sentences, labels, *, n_samples, project, language, examples, sample_offset):
        if (self.cand.name, sample_offset) == _StubAnnotator.fail_at:
            raise KeyboardInterrupt("simulated crash")
        _StubAnnotator.calls.append((self.cand.name, sample_offset))
        out = []
        for toks in sentences:
            g = self.gold[tuple(toks)]
            out.append(_TT(list(g) if self.cand.model == "good" else ["O"] * len(g)))
        return out


@pytest.fixture()
def stub_run(monkeypatch, tmp_path):
    pool = _synthetic_pool(200)
    pool = [(t, [x if x == "O" else ("B-PER" if i == 0 or g[i - 1] == "O" else "I-PER")
                 for i, x in enumerate(g)]) for t, g in pool]
    gold = GoldSample.from_pairs(sample_gold(pool, 12, seed=3)[0])
    by_tokens = {tuple(t): g for t, g in zip(gold.tokens, gold.tags)}
    _StubAnnotator.calls, _StubAnnotator.fail_at = [], None
    monkeypatch.setattr(run_mod, "_annotator", lambda cand, store, env: _StubAnnotator(cand, by_tokens))
    cands = [Candidate("good-one", "http://x/v1", "good", "KEY_A", 0.01, 0.03),
             Candidate("bad-one", "http://x/v1", "bad", None, 0.0, 0.0)]
    kw = dict(runs=3, store_dir=tmp_path / "store", out_dir=tmp_path / "out", progress=False,
              n_boot=100, environ={"KEY_A": "sk-never-written"})
    return cands, gold, kw, tmp_path


def test_stub_run_picks_good_writes_env_and_resumes_after_a_crash(stub_run):
    cands, gold, kw, tmp = stub_run
    _StubAnnotator.fail_at = ("bad-one", 1)
    with pytest.raises(KeyboardInterrupt):
        run_selection(cands, gold, **kw)
    assert _StubAnnotator.calls == [("good-one", 0), ("good-one", 1), ("good-one", 2), ("bad-one", 0)]
    _StubAnnotator.fail_at, _StubAnnotator.calls = None, []
    seen = []
    res = run_selection(cands, gold, **{**kw, "progress": lambda d, t, s: seen.append((d, t))})
    assert _StubAnnotator.calls == [("bad-one", 1), ("bad-one", 2)]     # only what was missing
    assert seen[-1] == (6, 6)
    assert res.winner == "good-one" and res.calls_made == 2
    assert res.metrics["good-one"]["f1_mean"] == 1.0 and res.metrics["bad-one"]["f1_mean"] == 0.0
    assert json.loads(json.dumps(res.as_dict()))["winner"] == "good-one"
    bad = next(r for r in res.decision.ranking if r.name == "bad-one")
    assert "lower than good-one" in bad.reasons[0]
    env = (tmp / "out" / "llm.env").read_text()
    assert "LLM_MODEL=good" in env and "LLM_BASE_URL=http://x/v1" in env
    assert "LLM_API_KEY_ENV=KEY_A" in env and "LLM_PRICE_OUT_PER_1K=0.03" in env
    # the cost of the resumed runs is the real one, not the zero of a replay
    assert res.metrics["good-one"]["cost_per_1k_usd"] == pytest.approx(1000 * (0.001 + 0.0006))
    for f in ("selection.json", "report.md", "report.html", "plots/f1_vs_cost.png",
              "plots/agreement.png", "plots/per_type_f1.png"):
        text = (tmp / "out" / f).read_bytes()
        assert len(text) > 200 and b"sk-never-written" not in text, f
    doc = json.loads((tmp / "out" / "selection.json").read_text())
    assert doc["decision"]["winner"] == "good-one" and doc["sample"]["drawn"] == 12
    md = (tmp / "out" / "report.md").read_text()
    assert "**Chosen: `good-one`**" in md and "points lower than good-one" in md
    # a third run reuses every saved result: no call at all; --force recomputes
    _StubAnnotator.calls = []
    again = run_selection(cands, gold, **kw)
    assert _StubAnnotator.calls == [] and again.calls_made == 0 and again.winner == "good-one"
    run_selection(cands, gold, **{**kw, "force": True})
    assert len(_StubAnnotator.calls) == 6


def test_stub_run_reports_a_candidate_that_cannot_run(stub_run, monkeypatch):
    cands, gold, kw, tmp = stub_run
    real = run_mod._annotator

    def maybe(cand, store, env):
        if cand.name == "bad-one":
            raise RuntimeError("environment variable NOPE_KEY is not set")
        return real(cand, store, env)

    monkeypatch.setattr(run_mod, "_annotator", maybe)
    res = run_selection(cands, gold, **kw)
    assert res.winner == "good-one" and "NOPE_KEY" in res.errors["bad-one"]
    assert "not run: RuntimeError: environment variable NOPE_KEY" in (tmp / "out" / "report.md").read_text()


# ------------------------------------------------------------------ the real annotator, fake server
FAKE_CANDIDATES = [("good", "perfect", 0.01, 0.03), ("noisy", "noisy-0.3", 0.001, 0.002),
                   ("inconsistent", "inconsistent", 0.005, 0.01), ("broken", "garbage", 0.0, 0.0)]


def _fake_cands(base_url, personas=FAKE_CANDIDATES):
    return parse_candidates([{"name": n, "base_url": base_url, "model": m, "api_key_env": "FAKE_LLM_KEY",
                              "price_in_per_1k": pi, "price_out_per_1k": po} for n, m, pi, po in personas])


@pytest.fixture(scope="module")
def fake_server():
    if not HAU_DEV.is_file():
        pytest.skip("shared MasakhaNER data missing")
    from devtools.fakellm.server import load_gold, start_server

    with start_server(load_gold(str(HAU_DEV))) as srv:
        yield srv


@pytest.fixture(scope="module")
def fake_selection(fake_server, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sel")
    gold = GoldSample.from_conll(HAU_DEV, 20, seed=42)
    kw = dict(runs=3, store_dir=tmp / "store", out_dir=tmp / "out", progress=False, n_boot=200,
              environ={"FAKE_LLM_KEY": "sk-fake-never-written"}, language="Hausa")
    before = fake_server.stats["requests"]
    res = run_selection(_fake_cands(fake_server.base_url), gold, **kw)
    return res, gold, kw, tmp, fake_server.stats["requests"] - before


def test_fake_server_selection_picks_good_and_explains_the_others(fake_selection, fake_server):
    res, gold, kw, tmp, requests = fake_selection
    assert requests > 0 and res.calls_made == 12 and not res.errors
    assert res.winner == "good"
    ranking = [r.name for r in res.decision.ranking]
    assert ranking == ["good", "inconsistent", "noisy", "broken"]
    why = {r.name: " ".join(r.reasons) for r in res.decision.ranking}
    m = res.metrics
    assert m["good"]["f1_mean"] == 1.0 and m["good"]["alpha_runs"] == 1.0
    assert m["good"]["format_failure_rate"] == 0.0 and m["good"]["cost_per_1k_usd"] > 0
    assert "self-agreement alpha" in why["noisy"] and m["noisy"]["alpha_runs"] < 0.5
    assert "self-agreement alpha" in why["inconsistent"] and m["inconsistent"]["f1_majority"] > m["inconsistent"]["f1_mean"]
    assert "no run produced a usable answer" in why["broken"] and m["broken"]["format_failure_rate"] == 1.0
    assert m["noisy"]["f1_mean"] < m["inconsistent"]["f1_mean"] < m["good"]["f1_mean"]
    md = (tmp / "out" / "report.md").read_text()
    assert "**Chosen: `good`**" in md and "| 4 | broken |" in md
    env = (tmp / "out" / "llm.env").read_text()
    assert "LLM_MODEL=perfect" in env and f"LLM_BASE_URL={fake_server.base_url}\n" in env
    assert "LLM_API_KEY_ENV=FAKE_LLM_KEY" in env and "sk-fake" not in env
    for path in (tmp / "out").rglob("*"):
        if path.is_file():
            assert b"sk-fake-never-written" not in path.read_bytes(), path


def test_fake_server_rerun_costs_nothing(fake_selection, fake_server, tmp_path):
    res, gold, kw, tmp, _ = fake_selection
    cands = _fake_cands(fake_server.base_url)
    before = fake_server.stats["requests"]
    again = run_selection(cands, gold, **kw)                 # saved results: not even the cache
    assert fake_server.stats["requests"] == before and again.calls_made == 0
    assert again.metrics["good"] == res.metrics["good"]
    fresh = run_selection(cands, gold, **{**kw, "out_dir": tmp_path / "o2"})   # only the LLM cache
    assert fake_server.stats["requests"] == before and fresh.calls_made == 12
    assert fresh.winner == "good" and fresh.metrics["noisy"]["f1_mean"] == res.metrics["noisy"]["f1_mean"]
    assert math.isnan(fresh.metrics["good"]["cost_per_1k_usd"])    # cache hits say 0 tokens: unknown
    assert fresh.metrics["good"]["calls_from_cache"] == 60
    from model.llm.ledger import Ledger

    summary = Ledger(kw["store_dir"] / "llm_ledger.sqlite3").summary()
    assert summary["cache_hits"] > 0


def test_fake_server_killed_run_resumes_from_the_cache(fake_server, tmp_path, monkeypatch, capsys):
    """A real crash: the CLI in a subprocess is SIGKILLed mid-run, then the run is repeated."""
    import os
    import signal
    import subprocess
    import sys
    import time

    cfile = tmp_path / "cands.json"
    personas = [("slowgood", "slow-150+perfect", 0.01, 0.03), ("slownoisy", "slow-150+noisy-0.3", 0.001, 0.002)]
    cfile.write_text(json.dumps([c.public_dict() for c in _fake_cands(fake_server.base_url, personas)]))
    def cli(out):
        return [sys.executable, "-m", "model.selection", "--candidates", str(cfile), "--gold", str(HAU_DEV),
                "-n", "16", "-r", "3", "--out", str(tmp_path / out), "--human-ref", "", "--n-boot", "100",
                "--no-progress", "--write-env", str(tmp_path / out / "backend" / "llm.env")]

    args = cli("out")
    env = {**os.environ, "FAKE_LLM_KEY": "sk-fake", "PYTHONPATH": str(ROOT)}
    before = fake_server.stats["requests"]
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 60
    while fake_server.stats["requests"] - before < 12 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    first = fake_server.stats["requests"] - before
    assert first >= 12 and not (tmp_path / "out" / "selection.json").exists()   # it died mid-way
    mid = fake_server.stats["requests"]
    from model.selection.__main__ import main

    monkeypatch.setenv("FAKE_LLM_KEY", "sk-fake")
    assert main(args[3:]) == 0                 # the same command again, resumed in this process
    stdout = capsys.readouterr().out
    second = fake_server.stats["requests"] - mid
    # a clean run of the same work, on a fresh store, to know the full number of requests
    full_before = fake_server.stats["requests"]
    run_selection(_fake_cands(fake_server.base_url, personas), GoldSample.from_conll(HAU_DEV, 16, seed=42),
                  runs=3, store_dir=tmp_path / "clean" / "llm-store", out_dir=tmp_path / "clean",
                  progress=False, n_boot=100, environ={"FAKE_LLM_KEY": "sk-fake"})
    full = fake_server.stats["requests"] - full_before
    assert second < full and second + first >= full     # answered requests were not bought again
    a = json.loads((tmp_path / "out" / "selection.json").read_text())
    b = json.loads((tmp_path / "clean" / "selection.json").read_text())
    assert a["decision"]["winner"] == b["decision"]["winner"] == "slowgood"
    assert "LLM_MODEL=slow-150+perfect" in (tmp_path / "out" / "backend" / "llm.env").read_text()
    assert "1. slowgood" in stdout and "2. slownoisy" in stdout
    for name in ("slowgood", "slownoisy"):
        assert a["candidates"][name]["metrics"]["f1_runs"] == b["candidates"][name]["metrics"]["f1_runs"]
    assert a["candidates"]["slowgood"]["metrics"]["cost_per_1k_usd"] == pytest.approx(
        b["candidates"]["slowgood"]["metrics"]["cost_per_1k_usd"], rel=0.05)


def test_html_report_escapes_text_and_keeps_tables():
    from model.selection.report import markdown_to_html

    md = "# Title\n\n| a | b |\n|---|---|\n| <script>x</script> | **bold** |\n\n- item `code`\n\n![p](plots/x.png)\n"
    html = markdown_to_html(md)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<table>" in html and "<strong>bold</strong>" in html and "<h1>Title</h1>" in html
    assert '<img alt="p" src="plots/x.png">' in html and "<li>item <code>code</code></li>" in html


def test_single_run_cannot_pass_the_self_agreement_condition():
    gold = [["B-PER", "O"], ["O", "B-LOC"]]
    m = evaluate(gold, {"samples": [[g] for g in gold]}, n_boot=50)
    assert m["runs"] == 1 and math.isnan(m["alpha_runs"]) and m["f1_mean"] == 1.0
    d = choose({"one": m})
    assert d.winner is None and "at least 2 runs" in d.ranking[0].reasons[0]


def test_unreachable_server_is_reported_as_request_errors(tmp_path):
    import socket

    with socket.socket() as sock:          # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    gold = GoldSample.from_pairs([(["Musa", "ya", "tafi", "Kano"], ["B-PER", "O", "O", "B-LOC"])] * 1)
    (cand,) = parse_candidates([{"name": "down", "base_url": f"http://127.0.0.1:{port}/v1", "model": "perfect",
                                 "max_retries": 0, "timeout_s": 2}])
    res = run_selection([cand], gold, runs=2, store_dir=tmp_path / "s", out_dir=tmp_path / "o",
                        progress=False, n_boot=20)
    m = res.metrics["down"]
    assert res.winner is None and m["format_failure_rate"] == 1.0 and m["request_error_rate"] == 1.0
    md = (tmp_path / "o" / "report.md").read_text()
    assert "No candidate met the rule" in md and "request errors 100.0%" in md
    assert not (tmp_path / "o" / "llm.env").exists()


def test_gold_from_label_studio_examples():
    from model.types import Example, Span

    text = "Musa Yusuf ya tafi Kano."
    gold = GoldSample.from_examples([Example(text, [Span(0, 10, "PER"), Span(19, 23, "LOC")]), Example("  ")])
    assert gold.tokens == [["Musa", "Yusuf", "ya", "tafi", "Kano", "."]]
    assert gold.tags == [["B-PER", "I-PER", "O", "O", "B-LOC", "O"]] and gold.labels == ["LOC", "PER"]
    with pytest.raises(ValueError, match="2 tokens but 1 tags"):
        GoldSample.from_pairs([(["a", "b"], ["O"])])


def test_missing_key_variable_is_reported_without_a_call(tmp_path):
    gold = [(["Musa", "ya", "tafi", "Kano"], ["B-PER", "O", "O", "B-LOC"])]
    (cand,) = parse_candidates([{"name": "nokey", "base_url": "http://127.0.0.1:9/v1", "model": "m",
                                 "api_key_env": "SELECTION_TEST_UNSET_KEY"}])
    res = run_selection([cand], gold, runs=2, store_dir=tmp_path / "s", out_dir=tmp_path / "o",
                        progress=False, environ={})
    assert res.winner is None and res.metrics == {}
    assert res.errors == {"nokey": "RuntimeError: environment variable SELECTION_TEST_UNSET_KEY is not set"}
    assert "not run: RuntimeError" in (tmp_path / "o" / "report.md").read_text()
