"""With the LLM endpoint dead and 16 /predict calls in flight against the real gunicorn backend,
200 webhooks and /health probes all answer 2xx within Label Studio's 1 s.

Dead endpoints: nothing listening (connection refused: the circuit breaker opens at once) and a
black hole (connections accepted, never answered: every attempt waits LLM_TIMEOUT_S). 100 KB
texts are over the default LLM_MAX_CHARS_PER_TASK, so they never reach the LLM path; 4 KB texts
do, and there only THREADS / 4 /predict threads may wait on the LLM (the others answer "LLM
busy" at once), so the other threads stay free for Label Studio's 1 s calls."""
from __future__ import annotations

import pytest

from tests.faults.llm_load import dead_endpoint, predict_storm

pytestmark = pytest.mark.slow


# the two other combinations (black hole with 100 KB, refused with 4 KB) are rows of
# `benchmarks/bench_llm.py --load`; here the cap and the LLM slots, each once
@pytest.mark.parametrize("kind, text_kb", [("refused", 100), ("blackhole", 4)])
def test_webhooks_answer_in_time_while_predict_waits_on_a_dead_llm(backend_process, kind, text_kb):
    url, hole = dead_endpoint(kind)
    try:
        be = backend_process({"PREDICT_SOURCE": "both", "LLM_BASE_URL": url, "LLM_API_KEY": "sk-load-test-0000",
                              "LLM_MODEL": "perfect", "LLM_TIMEOUT_S": "3", "TRAIN_EVERY_N": "1000000",
                              "LOG_LEVEL": "WARNING"})
        st = predict_storm(be.url, text_kb=text_kb)
    finally:
        if hole is not None:
            hole.close()
    assert st["statuses"] == [200], st
    assert st["in_time_2xx"] == st["webhooks_and_health"], f"slowest {st['max_s']} s: {st}"
    assert st["predict_codes"] == [200], st
    detail = " ".join(st["predict_detail"])
    assert ("LLM_MAX_CHARS_PER_TASK" in detail) if text_kb == 100 else ("LLM" in detail), st
