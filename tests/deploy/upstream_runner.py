"""A job for the RQ fairness test (``LAL_JOB_RUNNER=tests.deploy.upstream_runner:run_job``): it
takes ``LAL_TEST_JOB_S`` seconds and then fails like a training whose Label Studio is down, for
every project but ``LAL_TEST_HEALTHY``. Each start is appended to ``MODEL_DIR/starts.jsonl``."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

from backend.errors import UpstreamError


def run_job(kind: str, project_id: int, reason: str = "", job_id: str | None = None) -> dict:
    with open(Path(os.environ["MODEL_DIR"]) / "starts.jsonl", "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"project": project_id, "job": job_id, "t": time.time()}) + "\n")
    time.sleep(float(os.environ.get("LAL_TEST_JOB_S", "0.5")))
    if project_id != int(os.environ.get("LAL_TEST_HEALTHY", "0")):
        raise UpstreamError("Label Studio at http://ls:8080 is unreachable for listing tasks: ConnectError")
    return {"status": "trained"}
