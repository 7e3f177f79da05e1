"""/predict with the LLM down while Label Studio keeps posting webhooks (issue 20).

``predict_storm`` sends ``n_predict`` concurrent /predict calls, each one task of ``text_kb`` KB,
to a running backend whose LLM endpoint is dead, and meanwhile ``n_webhooks`` annotation webhooks
(20 at a time) and /health probes; Label Studio gives /webhook and /health 1 s. Shared by
tests/faults/test_llm_predict_load.py (asserts) and benchmarks/bench_llm.py (reports)."""
from __future__ import annotations

import socket
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from tests.conftest import NER_CONFIG
from tests.faults.harness import event, setup

# a sentence of Hausa-looking text, repeated to size (the LLM never answers, so content is moot)
_SENTENCE = "Gwamnan jihar Kano Abba Yusuf ya ce za a gina sabuwar makaranta a Kano ranar Litinin . "


def dead_endpoint(kind: str = "refused") -> tuple[str, socket.socket | None]:
    """``refused``: a port nobody listens on; ``blackhole``: connections accepted by the kernel,
    never answered (a host that drops traffic), so every attempt waits its full timeout."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    if kind == "blackhole":
        sock.listen(1024)
        return f"http://127.0.0.1:{port}/v1", sock
    sock.close()
    return f"http://127.0.0.1:{port}/v1", None


def predict_storm(url: str, project: int = 1, n_predict: int = 16, text_kb: int = 100,
                  n_webhooks: int = 200) -> dict:
    setup(url, project)
    text = (_SENTENCE * (text_kb * 1024 // len(_SENTENCE) + 1))[:text_kb * 1024]
    pred_lat: list[float] = []
    pred_codes: list[int] = []
    details: list[str] = []
    started = threading.Event()

    def predict(i: int) -> None:
        started.set()
        t0 = time.perf_counter()
        try:
            r = requests.post(f"{url}/predict", timeout=200, json={
                "project": f"{project}.1700000000", "label_config": NER_CONFIG,
                "tasks": [{"id": 1000 + i, "data": {"text": text}}]})
            pred_codes.append(r.status_code)
            details.append(str(r.json().get("detail", ""))[:300])
        except requests.RequestException as e:
            pred_codes.append(0)
            details.append(type(e).__name__)
        pred_lat.append(time.perf_counter() - t0)

    def webhook(i: int) -> tuple[float, int]:
        t0 = time.perf_counter()
        try:
            path = "/webhook" if i % 4 else "/health"
            r = (requests.post(f"{url}{path}", json=event("ANNOTATION_CREATED", project, i + 1, i + 1),
                               timeout=5) if path == "/webhook" else requests.get(f"{url}{path}", timeout=5))
            code = r.status_code
        except requests.RequestException:
            code = 0
        return time.perf_counter() - t0, code

    preds = ThreadPoolExecutor(n_predict)
    t0 = time.perf_counter()
    for i in range(n_predict):
        preds.submit(predict, i)
    started.wait(5)
    time.sleep(0.3)  # the /predict calls are in the server's threads now
    with ThreadPoolExecutor(20) as pool:
        hooks = list(pool.map(webhook, range(n_webhooks)))
    hooks_wall = time.perf_counter() - t0
    preds.shutdown(wait=True)
    lat = [d for d, _ in hooks]
    codes = [c for _, c in hooks]
    return {"predict_calls": n_predict, "text_kb": text_kb, "webhooks_and_health": n_webhooks,
            "in_time_2xx": sum(1 for d, c in hooks if d < 1.0 and 200 <= c < 300),
            "max_s": round(max(lat), 3), "p50_s": round(statistics.median(lat), 3),
            "p95_s": round(sorted(lat)[int(0.95 * (len(lat) - 1))], 3),
            "statuses": sorted(set(codes)), "hooks_wall_s": round(hooks_wall, 2),
            "predict_codes": sorted(set(pred_codes)), "predict_max_s": round(max(pred_lat), 2),
            "late": [i for i, (d, c) in enumerate(hooks) if d >= 1.0 or not 200 <= c < 300][:40],
            "predict_detail": sorted(set(details))[:3]}
