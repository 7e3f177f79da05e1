"""Oracles for ``model.simulate``: the gold labels (a human) and an LLM.

The LLM oracle asks ``samples`` times per sentence and votes token by token; its self-consistency
for a sentence is the mean strict span agreement of the individual runs with the voted labelling
(1.0 = every run produced the same entities). A sentence whose every run failed (broken JSON,
wrong length) comes back as ``None`` and is counted by the simulation - never silently dropped
(weakness 5 of the reference code): a human labels it instead, and is paid for it.

``buy_labels`` is one round's purchase for an arm: gold, LLM, or LLM with routing (accept where
the LLM is self-consistent and the local model agrees, else a human; the human-reviewed tasks are
recorded as evidence for re-fitting the thresholds).
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from model.active.disagreement import span_agreement
from model.active.routing import RoutingPolicy, route

__all__ = ["GoldOracle", "LLMOracle", "make_llm_oracle", "vote", "buy_labels",
           "spans_for_routing"]

Labels = list[str]


class GoldOracle:
    """Returns the dataset's own labels: stands for a careful human annotator."""

    def __init__(self, Y: Sequence[Sequence[str]]):
        self.Y = Y

    def label(self, i: int) -> Labels:
        return list(self.Y[i])


def _entities(tags: Sequence[str]) -> list[tuple[int, int, str]]:
    from model.ner.spans import bio_entities, repair_bio
    return bio_entities(repair_bio(list(tags)))


def vote(runs: Sequence[Labels | None]) -> tuple[Labels | None, float]:
    """Token-wise majority over successful runs + self-consistency in [0, 1]."""
    ok = [list(r) for r in runs if r is not None]
    if not ok:
        return None, 0.0
    n = len(ok[0])
    ok = [r for r in ok if len(r) == n]
    voted = [Counter(r[t] for r in ok).most_common(1)[0][0] for t in range(n)]
    from model.ner.spans import repair_bio
    voted = repair_bio(voted)
    ref = _entities(voted)
    consistency = sum(span_agreement(_entities(r), ref) for r in ok) / len(runs)
    return voted, consistency


class LLMOracle:
    """Labels pool items through ``annotate(list of inputs) -> [(labels or None, consistency,
    usage)]``, built per arm by ``factory(arm_name)`` so that each arm has its own response cache
    and pays for its own calls (a cache shared across arms would make later arms look free).

    ``usage()`` returns the arm's cumulative ``tokens_in``, ``tokens_out`` and ``cost_usd``.
    """

    def __init__(self, inputs: Sequence[Any], factory: Callable[[str], Callable[[list[Any]], list[
            tuple[Labels | None, float, dict]]]]):
        self.inputs = inputs
        self.factory = factory
        self.closers: list[Callable[[], None]] = []
        self.start_arm("default")

    def start_arm(self, name: str) -> None:
        self.annotate = self.factory(name)
        self._usage = {"tokens_in": 0, "tokens_out": 0, "cost_usd": 0.0}

    def label_many(self, idx: Sequence[int]) -> list[tuple[Labels | None, float]]:
        out = []
        for labels, consistency, usage in self.annotate([self.inputs[i] for i in idx]):
            for k in self._usage:
                self._usage[k] += usage.get(k, 0)
            out.append((labels, consistency))
        return out

    def usage(self) -> dict[str, float]:
        return dict(self._usage)

    def close(self) -> None:
        for c in self.closers:
            c()


_LANGUAGES = {"hau": "Hausa", "yor": "Yoruba", "swa": "Swahili", "ibo": "Igbo", "pcm":
              "Nigerian Pidgin", "zul": "Zulu", "kin": "Kinyarwanda", "lug": "Luganda",
              "sna": "Shona", "bam": "Bambara", "fon": "Fon", "twi": "Twi", "wol": "Wolof"}


def make_llm_oracle(data: Any, data_dir: str, model_name: str | None, samples: int,
                    fake_persona: str | None = None, store_dir: str = "benchmarks/out/llm_store"
                    ) -> LLMOracle:
    """An LLM oracle on the endpoint of the ``LLM_*`` environment variables, or - with
    ``fake_persona`` (e.g. ``noisy-0.14``) - on the in-process fake server of ``tests.fakellm``
    loaded with the dataset's own gold labels, so a noisy LLM can be simulated offline.
    """
    import dataclasses
    import os
    import shutil
    import tempfile
    from pathlib import Path

    from model.llm.annotator import LLMAnnotator
    from model.llm.config import LLMConfig
    cfg = LLMConfig.from_env(os.environ)
    closers = []
    if fake_persona:
        from tests.fakellm.server import start_server
        gold = ({tuple(x): list(y) for x, y in zip(data.X, data.Y)} if data.task == "ner"
                else {x: y[0] for x, y in zip(data.X, data.Y)})
        server = start_server(gold)
        closers.append(server.stop)
        cfg = dataclasses.replace(cfg, base_url=server.base_url, api_key="fake-key",
                                  model=fake_persona)
    elif model_name:
        cfg = dataclasses.replace(cfg, model=model_name)
    if not cfg.enabled:
        raise RuntimeError("--oracle llm needs LLM_API_KEY and LLM_BASE_URL, or --fake-llm")
    lang = _LANGUAGES.get(Path(data_dir).name, cfg.language)
    cfg = dataclasses.replace(cfg, samples=samples, language=lang)
    if data.task == "ner":
        def annotate(ann: Any, batch: list[Any]) -> list[tuple[Labels | None, float, dict]]:
            res = ann.tag_tokens([list(x) for x in batch], data.labels, n_samples=samples,
                                 project="simulate", language=lang)
            out = []
            for r in res:
                tags, cons = vote(r.samples)
                out.append((tags, cons, {"tokens_in": r.tokens_in, "tokens_out": r.tokens_out,
                                         "cost_usd": r.cost_usd}))
            return out
    else:
        from model.spec import ChoicesControl, TaskSpec
        spec = TaskSpec(choices=ChoicesControl("topic", "text", "text", tuple(data.labels)))

        def annotate(ann: Any, batch: list[Any]) -> list[tuple[Labels | None, float, dict]]:
            out = []
            for r in ann.annotate(list(batch), spec, project="simulate", language=lang):
                best = max(r.choices, key=lambda c: c[1])[0] if r.choices and not r.error \
                    else None
                out.append(([best] if best else None, float(r.score or 0.0) if best else 0.0,
                            {"tokens_in": r.tokens_in, "tokens_out": r.tokens_out,
                             "cost_usd": r.cost_usd}))
            return out
    def factory(arm: str) -> Callable[[list[Any]], list[tuple[Labels | None, float, dict]]]:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in arm)
        Path(store_dir).mkdir(parents=True, exist_ok=True)
        fresh = tempfile.mkdtemp(prefix=f"{safe}-", dir=store_dir)  # never a stale cache
        closers.append(lambda: shutil.rmtree(fresh, ignore_errors=True))
        ann = LLMAnnotator(cfg, Path(fresh))
        return lambda batch: annotate(ann, batch)

    oracle = LLMOracle(data.X, factory)
    oracle.closers = closers
    return oracle


def buy_labels(data: Any, oracle_name: str, picked: list[int], model: Any,
               oracles: dict[str, Any], policy: RoutingPolicy, labels: dict[int, list],
               counts: dict[str, int], evidence: list[tuple[float, float, float]]) -> None:
    """Label ``picked`` with the arm's oracle, updating ``labels`` and the counters."""
    gold = oracles["gold"]
    if oracle_name == "gold":
        for i in picked:
            labels[i] = gold.label(i)
        counts["human"] += len(picked)
        return
    llm = oracles["llm"]
    results = llm.label_many(picked)  # [(tags or None, consistency)]
    if oracle_name == "llm+route":
        ok = [k for k, (tags, _) in enumerate(results) if tags is not None]
        llm_spans, model_spans = spans_for_routing(data, model, [picked[k] for k in ok],
                                                    [results[k][0] for k in ok])
        accept, agreement = route(llm_spans, model_spans, [results[k][1] for k in ok], policy)
        accepted = {ok[j] for j in np.flatnonzero(accept)}
        for j, k in enumerate(ok):  # the human reviews the rejected ones: record LLM quality
            if k not in accepted:
                human = spans_for_routing(data, None, [picked[k]], [gold.label(picked[k])])[0]
                evidence.append((results[k][1], float(agreement[j]),
                                 span_agreement(llm_spans[j], human[0])))
    else:
        accepted = {k for k, (tags, _) in enumerate(results) if tags is not None}
    for k, i in enumerate(picked):
        tags = results[k][0]
        if tags is None:
            counts["llm_failed"] += 1
        if k in accepted:
            labels[i] = list(tags)
            counts["llm"] += 1
            counts["auto_accepted"] += oracle_name == "llm+route"
            g = gold.label(i)
            counts["llm_correct_tokens"] += sum(a == b for a, b in zip(tags, g))
            counts["llm_tokens_total"] += len(g)
        else:  # routed to a human, or the LLM failed on it: a human labels it, and is paid
            labels[i] = gold.label(i)
            counts["human"] += 1


def spans_for_routing(data: Any, model: Any, idx: list[int], llm_labels: list[list[str]]
                       ) -> tuple[list, list]:
    """LLM and local-model labelings of the same items as comparable span lists."""
    if not idx:
        return [], []
    X = [data.X[i] for i in idx]
    if data.task == "ner":
        from model.ner.spans import bio_entities, repair_bio
        return ([bio_entities(repair_bio(t)) for t in llm_labels],
                [[s[:3] for s in spans] for spans in model.predict_spans(X)] if model is not None else [])
    pred = model.predict(X) if model is not None else []  # textcat: labels as whole-text spans
    return ([[(0, 1, lab) for lab in t] for t in llm_labels],
            [[(0, 1, lab) for lab in (p if isinstance(p, (list, tuple)) else [p])] for p in pred])
