"""Benchmarks: scripts that print figures beside a baseline measured in the same run."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def save_results(raw: Any, json_path: str | Path, md: str, md_path: str | Path | None) -> None:
    """Write a run's raw figures (JSON, under benchmarks/out/) and its Markdown table (under
    benchmarks/results/, which the README quotes), creating folders; ``md_path`` None keeps the
    committed table untouched (a trial run)."""
    for path, text in ((json_path, json.dumps(raw, indent=1)), (md_path, md)):
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(text, encoding="utf-8")
