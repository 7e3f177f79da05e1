"""The writer that keeps Label Studio's labelling queue ordered after each training.

``PredictionWriter`` scores unlabelled tasks with the new version and the project's query
strategy (``score`` low = label this first), writes them, sets the project's ``model_version`` to
the new version (Label Studio's "Uncertainty sampling" only orders by predictions whose
model_version equals the project's, so without that step the queue would silently be random) and
then removes the superseded predictions (``backend/superseded.py``).

Cost per retrain independent of the pool: with ``RESCORE_CANDIDATES`` > 0 a retrain scores a
rotating, seeded sample of that many unlabelled tasks (windows of Label Studio's listing, in a
seeded order that visits every window once per cycle) plus the previous queue's tasks still
unlabelled, and writes predictions for the best ``QUEUE_SIZE`` of them. ``RESCORE_CANDIDATES=0``
scores and writes the whole pool (one bulk import). For ``diverse:*`` strategies each written
prediction carries a k-means ``cluster`` of the queue, which Label Studio's queue balances
(least-solved cluster first, projects/functions/next_task.py).
"""
from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import numpy as np

from backend.ls_json import has_annotation, llm_spans_of, regions_for
from backend.superseded import PredictionLedger, prune
from model.active.candidates import SAMPLE_SEED, sample_windows
from model.spec import TaskSpec

if TYPE_CHECKING:
    from backend.ls_client import LabelStudioClient
    from backend.model_store import ModelStore
    from model.local import LocalModel

log = logging.getLogger(__name__)
SINGLE_WRITE_MAX = 1_000  # above this many predictions one bulk import beats one request each


class PredictionWriter:
    def __init__(self, client: "LabelStudioClient", store: "ModelStore", strategy_name: str, *,
                 candidates: int = 0, queue_size: int = 0, sweep_every: int = 20,
                 seed: int = SAMPLE_SEED):
        self.client = client
        self.store = store
        self.strategy_name = strategy_name
        self.candidates = max(0, int(candidates))
        self.queue_size = max(0, int(queue_size))
        self.sweep_every = max(1, int(sweep_every))
        self.seed = seed

    def write(self, project_id: int, spec: TaskSpec, version: str, model: "LocalModel",
              tasks: list[dict] | None = None) -> dict:
        """Score, write and prune (see the module docstring); ``tasks``: score exactly these
        (e.g. the pool routing already listed with its predictions)."""
        t0 = time.perf_counter()
        ledger_io = PredictionLedger(self.store, project_id)
        ledger = ledger_io.load()
        key = (spec.ner or spec.choices).value_key
        with_preds = uses_llm_predictions(self.strategy_name)
        sampled = tasks is None and self.candidates > 0
        if tasks is not None:
            pages: Iterator[list[dict]] = iter([tasks])
        elif sampled:
            pages = iter([self._sample(project_id, ledger, with_preds)])
        else:  # the whole pool: predict each page while Label Studio serves the next one
            pages = _read_ahead(self.client.unlabeled_pages(project_id, with_predictions=with_preds))
        listed, texts, preds, seen = [], [], [], set()
        for page in pages:
            page = [t for t in page if isinstance((t.get("data") or {}).get(key), str) and t["id"] not in seen]
            seen.update(t["id"] for t in page)  # a page boundary shifted by a new annotation
            listed += page
            texts += [t["data"][key] for t in page]
            preds += model.predict([t["data"][key] for t in page])
        t1 = time.perf_counter()
        if listed:
            scores, strategy, outputs = _queue_scores(self.strategy_name, model, texts, preds, listed, spec)
            order = np.argsort(scores, kind="stable")
            keep = order[: self.queue_size] if sampled and self.queue_size else order
            clusters = _clusters(self.strategy_name, outputs, keep, self.seed)
            payload = [{"task": int(listed[i]["id"]), "result": regions_for(spec, texts[i], preds[i].spans, preds[i].choices),
                        "score": float(round(scores[i], 6)), "model_version": version,
                        **({"cluster": int(clusters[j])} if clusters is not None else {})}
                       for j, i in enumerate(keep)]
        else:
            payload, strategy = [], self.strategy_name
        t2 = time.perf_counter()
        try:
            self._write(project_id, version, payload, ledger)
        finally:  # what did land is in the ledger even when a request failed half-way
            ledger_io.save(ledger)
        t3 = time.perf_counter()
        since = ledger.get("writes_since_sweep")
        sweep = since is None or int(since) + 1 >= self.sweep_every
        ledger["writes_since_sweep"] = None if since is None else int(since) + 1
        pruned = prune(self.client, self.store, project_id, version, ledger, sweep=sweep)
        ledger_io.save(ledger)
        t4 = time.perf_counter()
        secs = round(t4 - t0, 3)
        log.info("project %s: scored %d task(s), wrote %d prediction(s) of %s (%s), deleted %d superseded in %.2fs",
                 project_id, len(listed), len(payload), version, strategy, pruned["deleted"], secs)
        return {"tasks": len(payload), "scored": len(listed), "strategy": strategy, "seconds": secs,
                "deleted": pruned["deleted"], "delete_failed": pruned["failed"],
                "phases": {"list_predict": round(t1 - t0, 3), "score": round(t2 - t1, 3),
                           "write": round(t3 - t2, 3), "prune": round(t4 - t3, 3)}}

    def _write(self, project_id: int, version: str, payload: list[dict], ledger: dict) -> None:
        """Write ``payload`` and make ``version`` the project's model_version, recording ids in ``ledger``."""
        if len(payload) <= SINGLE_WRITE_MAX:
            # a task still queued from the last write has its prediction re-written in place (one
            # request instead of a create now and a delete after); ids are kept, so the next
            # retrain deletes exactly what this one wrote
            reuse = {tid: pid for pid, (tid, v) in ledger["written"].items() if v == ledger.get("current")}
            for p in payload:
                pid = reuse.get(p["task"])
                if pid is not None and self.client.update_prediction(
                        int(pid), {k: v for k, v in p.items() if k != "task"}):
                    ledger["written"][pid] = [p["task"], version]
                else:
                    ledger["written"][str(self.client.create_prediction(project_id, p))] = [p["task"], version]
        else:
            self.client.import_predictions(project_id, payload)
            ledger["writes_since_sweep"] = None  # ids unknown: the next prune sweeps
        self.client.set_model_version(project_id, version)
        ledger["current"] = version

    def _sample(self, project_id: int, ledger: dict, with_preds: bool) -> list[dict]:
        """This retrain's candidates: ``RESCORE_CANDIDATES`` in windows of the unlabelled listing, taken in
        a seeded order that visits every window once per cycle (``model.active.candidates``, the
        sample the simulation draws too), plus the current queue's tasks."""
        page, r, total = sample_windows(lambda w, size: self.client.unlabeled_page(project_id, w + 1, size),
                                        self.candidates, int(ledger.get("rotation") or 0),
                                        int(ledger.get("pool_total") or 0), self.seed, key=lambda t: int(t["id"]))
        out: dict[int, dict] = {int(t["id"]): t for t in page}
        ledger["rotation"], ledger["pool_total"] = r, total
        queue = sorted({tid for tid, v in ledger["written"].values() if v == ledger.get("current")} - set(out))
        if queue:
            out.update({int(t["id"]): t for t in self.client.tasks_by_ids(project_id, queue, full=False,
                                                                          annotated=False)})
        if with_preds and out:  # the strategy reads the LLM pre-annotations stored on the tasks
            out = {int(t["id"]): t for t in self.client.tasks_by_ids(project_id, list(out))
                   if not has_annotation(t)}
        return list(out.values())


def _read_ahead(pages: Iterator[list[dict]]) -> Iterator[list[dict]]:
    """Yield ``pages`` while a thread already fetches the next one (Label Studio's listing and our
    model then use the two cores at once)."""
    with ThreadPoolExecutor(1, thread_name_prefix="ls-read-ahead") as pool:
        nxt = pool.submit(next, pages, None)
        while (page := nxt.result()) is not None:
            nxt = pool.submit(next, pages, None)
            yield page


def uses_llm_predictions(strategy_name: str) -> bool:
    """Whether the strategy reads the LLM pre-annotations stored on the tasks."""
    from model.active.registry import get_strategy

    try:
        return bool(get_strategy(strategy_name).uses_llm_predictions)
    except ValueError:
        return False


def _queue_scores(strategy_name: str, model: "LocalModel", texts: list[str], preds: list,
                  tasks: list[dict], spec: TaskSpec):
    """Scores in [0, 1] for Label Studio's queue, low = label first, from the project's query
    strategy, with the strategy's name and the model outputs it read; when the strategy lacks an
    input (e.g. disagreement before any LLM pre-annotation) the model's own least-confidence score
    is used and the log says so."""
    from model.active.base import ActiveLearningError
    from model.active.base import queue_scores as ranked
    from model.active.registry import get_strategy

    llm_spans, consistency = llm_spans_of(tasks, spec) if spec.ner else (None, None)
    outputs = model.outputs(texts, preds, llm_spans=llm_spans, llm_consistency=consistency)
    try:
        return ranked(get_strategy(strategy_name), outputs), strategy_name, outputs
    except ActiveLearningError as e:
        log.warning("strategy %s unusable here (%s); ordering by model confidence", strategy_name, e)
        return np.array([p.score for p in preds], dtype=float), "confidence", outputs


def _clusters(strategy_name: str, outputs, keep: np.ndarray, seed: int) -> np.ndarray | None:
    """k-means clusters of the written tasks for diversity-aware strategies (``diverse:*``), as
    many clusters as the strategy's queue batch; None for the others."""
    from model.active.diversity import DiverseBatch
    from model.active.registry import get_strategy

    strategy = get_strategy(strategy_name)
    if not isinstance(strategy, DiverseBatch) or keep.size < 2:
        return None
    from sklearn.cluster import KMeans

    emb = np.asarray(outputs.embeddings, dtype=np.float64)[keep]
    emb = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)  # cosine, as DiverseBatch
    k = max(1, min(int(strategy.queue_batch), keep.size))
    return KMeans(n_clusters=k, n_init=3, random_state=seed).fit_predict(emb)
