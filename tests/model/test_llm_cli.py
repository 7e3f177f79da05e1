"""``python -m model.llm``: annotate a CoNLL slice and a TSV against the fake server, ledger."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from model.llm.__main__ import main
from tests.fakellm import load_gold, start_server
from tests.fakellm.testing import HAU_DEV

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
