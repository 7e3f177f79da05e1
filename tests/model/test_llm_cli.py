"""``python -m model.llm``: annotate a CoNLL slice and a TSV against the fake server, ledger."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from model.llm.__main__ import main
from devtools.fakellm import load_gold, start_server
from devtools.fakellm.testing import HAU_DEV

REPO = Path(__file__).resolve().parents[2]


def test_help_works():
    out = subprocess.run([sys.executable, "-m", "model.llm", "annotate", "--help"], cwd=REPO,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "--input" in out.stdout and "--labels" in out.stdout


def test_annotate_conll_and_tsv_then_ledger(tmp_path, monkeypatch, capsys):
    if not HAU_DEV.exists():
        pytest.skip("../shared not present")
    lines = HAU_DEV.read_text(encoding="utf-8").split("\n\n")[:8]
    conll = tmp_path / "slice.conll"
    conll.write_text("\n\n".join(lines) + "\n", encoding="utf-8")
    tsv = tmp_path / "news.tsv"
    tsv.write_text("category\theadline\ttext\turl\nsports\tKano Pillars\tTa ci wasa\thttp://a\n"
                   "health\tLikitoci\tCutar zazzabi\thttp://b\n", encoding="utf-8")
    handle = start_server(load_gold(str(conll), str(tsv)))
    try:
        monkeypatch.setenv("LLM_BASE_URL", handle.base_url)
        monkeypatch.setenv("LLM_API_KEY", "sk-test")
        monkeypatch.setenv("LLM_MODEL", "perfect")
        store = str(tmp_path / "store")
        assert main(["--store", store, "annotate", "--input", str(conll), "--output",
                     str(tmp_path / "o.jsonl"), "--language", "Hausa", "--labels", "PER",
                     "ORG", "LOC", "DATE"]) == 0
        report = json.loads(capsys.readouterr().out)
        assert report["items"] == 8 and report["failed"] == 0 and report["entity_f1_vs_gold"] == 1.0
        assert report["tokens_in"] > 0 and report["cost_usd"] > 0
        rows = [json.loads(x) for x in (tmp_path / "o.jsonl").read_text().splitlines()]
        assert len(rows) == 8 and rows[0]["tags"] == rows[0]["gold"]
        assert main(["--store", store, "annotate", "--input", str(tsv), "--output",
                     str(tmp_path / "n.jsonl"), "--project", "news"]) == 0
        assert json.loads(capsys.readouterr().out)["accuracy_vs_gold"] == 1.0
        assert main(["--store", store, "ledger", "--project", "news"]) == 0
        led = json.loads(capsys.readouterr().out)
        assert led["project"] == "news" and led["calls"] == 2
        monkeypatch.setenv("LLM_API_KEY", "")
        assert main(["--store", store, "annotate", "--input", str(tsv), "--output",
                     str(tmp_path / "x.jsonl")]) == 2
        assert "LLM_API_KEY not set" in capsys.readouterr().err
    finally:
        handle.stop()


@pytest.fixture
def conll_server(tmp_path):
    if not HAU_DEV.exists():
        pytest.skip("../shared not present")
    lines = HAU_DEV.read_text(encoding="utf-8").split("\n\n")[:12]
    conll = tmp_path / "slice.conll"
    conll.write_text("\n\n".join(lines) + "\n", encoding="utf-8")
    handle = start_server(load_gold(str(conll)))
    yield conll, handle
    handle.stop()


def _cli(conll, out, *extra, store=None):
    args = (["--store", str(store)] if store else []) + [
        "annotate", "--input", str(conll), "--output", str(out), *extra]
    return main(args)


def test_wrong_model_stops_early_with_one_message_and_exit_1(tmp_path, monkeypatch, capsys,
                                                            conll_server):
    conll, handle = conll_server
    monkeypatch.setenv("LLM_BASE_URL", handle.base_url)
    monkeypatch.setenv("LLM_API_KEY", "sk-test")
    monkeypatch.setenv("LLM_MODEL", "llama-9-missing")
    monkeypatch.setenv("LLM_SENTENCES_PER_REQUEST", "1")
    before = handle.stats["requests"]
    assert _cli(conll, tmp_path / "o.jsonl", store=tmp_path / "s") == 1
    err = capsys.readouterr().err
    assert "12 of 12 items failed" in err and "Traceback" not in err
    assert f"LLM_BASE_URL={handle.base_url}" in err and "LLM_MODEL=llama-9-missing" in err
    assert "does not exist" in err  # the server's own words
    assert handle.stats["requests"] - before <= 4  # stopped early: not 12 x 5 attempts


def test_html_base_url_is_a_clear_error_not_a_traceback(tmp_path, monkeypatch, capsys,
                                                        conll_server):
    conll, handle = conll_server
    monkeypatch.setenv("LLM_BASE_URL", handle.base_url)
    monkeypatch.setenv("LLM_API_KEY", "sk-test")
    monkeypatch.setenv("LLM_MODEL", "html")
    assert _cli(conll, tmp_path / "o.jsonl", store=tmp_path / "s") == 1
    err = capsys.readouterr().err
    assert "not JSON" in err and "text/html" in err and "/v1" in err and "Traceback" not in err


def test_dry_run_projects_cost_without_calls_and_model_dir_is_the_store(
        tmp_path, monkeypatch, capsys, conll_server):
    conll, handle = conll_server
    monkeypatch.setenv("LLM_BASE_URL", handle.base_url)
    monkeypatch.setenv("LLM_API_KEY", "sk-test")
    monkeypatch.setenv("LLM_MODEL", "perfect")
    monkeypatch.delenv("LLM_STORE_DIR", raising=False)
    monkeypatch.setenv("MODEL_DIR", str(tmp_path / "models"))
    before = handle.stats["requests"]
    assert _cli(conll, tmp_path / "o.jsonl", "--dry-run") == 0
    proj = json.loads(capsys.readouterr().out)
    assert handle.stats["requests"] == before
    assert proj["dry_run"] and proj["items"] == 12 and proj["requests"] == 3
    assert 0 < proj["prompt_usd_est"] < proj["max_usd_est"] <= proj["reserved_worst_usd"]
    assert _cli(conll, tmp_path / "o.jsonl") == 0
    report = json.loads(capsys.readouterr().out)
    assert proj["prompt_usd_est"] <= report["cost_usd"] <= proj["max_usd_est"]
    # the store is MODEL_DIR/llm, where the backend keeps its cache and ledger
    assert (tmp_path / "models" / "llm" / "llm_ledger.sqlite3").exists()


def test_label_map_and_unknown_labels_in_the_report(tmp_path, monkeypatch, capsys, conll_server):
    conll, handle = conll_server
    monkeypatch.setenv("LLM_BASE_URL", handle.base_url)
    monkeypatch.setenv("LLM_API_KEY", "sk-test")
    monkeypatch.setenv("LLM_MODEL", "unknown-tags")
    assert _cli(conll, tmp_path / "o.jsonl", store=tmp_path / "s") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["unknown_labels_read_as_O"].get("EVENT", 0) > 0
    assert _cli(conll, tmp_path / "o.jsonl", "--label-map", '{"EVENT": "ORG"}',
                store=tmp_path / "s2") == 0
    assert "EVENT" not in json.loads(capsys.readouterr().out)["unknown_labels_read_as_O"]
    assert _cli(conll, tmp_path / "o.jsonl", "--label-map", "[1]", store=tmp_path / "s3") == 2
