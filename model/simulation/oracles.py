"""Oracles for ``model.simulation``: the gold labels (a human) and an LLM.

The LLM oracle asks ``samples`` times per sentence and votes token by token; its self-consistency
for a sentence is the mean strict span agreement of the individual runs with the voted labelling
(1.0 = every run produced the same entities). A sentence whose every run failed (broken JSON,
wrong length) comes back as ``None`` and is counted by the simulation - never silently dropped
(weakness 5 of the reference code): a human labels it instead, and is paid for it.

``buy_labels`` is one round's purchase for an arm: gold, LLM, or LLM with routing (accept where
the LLM is self-consistent and the local model agrees, else a human; the human-reviewed tasks are
recorded as evidence for re-fitting the thresholds). A human who gets a task the LLM labelled
*reviews* its pre-annotation and is paid the cost model's review price (``CostModel.review_price``:
cheaper when the pre-annotation was already right); a task the LLM failed on is labelled from
scratch.

``PreLabels`` + ``PICKERS`` are the pre-label + review policy: the LLM labels a large part of the
pool up front, the model trains on those labels, and each round humans review the pre-labelled
tasks a picker chooses (a review replaces the LLM label with the gold one).
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from model.active.disagreement import span_agreement
from model.active.routing import RoutingPolicy, route
from model.languages import language_name
from model.simulation.cost import CostModel

__all__ = ["GoldOracle", "LLMOracle", "make_llm_oracle", "vote", "buy_labels",
           "spans_for_routing", "same_labels", "PreLabels", "PICKERS"]

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


def make_llm_oracle(data: Any, data_dir: str, model_name: str | None, samples: int,
                    fake_persona: str | None = None, store_dir: str = "benchmarks/out/llm_store",
                    prices_per_1m: tuple[float, float] | None = None) -> LLMOracle:
    """An LLM oracle on the endpoint of the ``LLM_*`` environment variables, or - with
    ``fake_persona`` (e.g. ``noisy-0.14``) - on the in-process fake server of ``devtools.fakellm``
    loaded with the dataset's own gold labels, so a noisy LLM can be simulated offline.
    ``prices_per_1m`` (input, output USD per 1M tokens, e.g. an LLM profile's list prices)
    replaces ``LLM_PRICE_*``, so the reported ``cost_usd`` is the profile's.
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
        from devtools.fakellm.server import start_server
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
    lang = language_name(Path(data_dir).name, cfg.language)
    cfg = dataclasses.replace(cfg, samples=samples, language=lang)
    if prices_per_1m is not None:
        cfg = dataclasses.replace(cfg, price_in_per_1k=prices_per_1m[0] / 1000,
                                  price_out_per_1k=prices_per_1m[1] / 1000)
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
               counts: dict[str, int], evidence: list[tuple[float, float, float, float]],
               cost: CostModel) -> None:
    """Label ``picked`` with the arm's oracle, updating ``labels`` and the counters. Routing
    arms record, per reviewed task, (consistency, agreement, LLM quality, review price)."""
    gold = oracles["gold"]
    if oracle_name == "gold":
        for i in picked:
            labels[i] = gold.label(i)
        counts["human"] += len(picked)
        return
    llm = oracles["llm"]
    results = llm.label_many(picked)  # [(tags or None, consistency)]
    routed = oracle_name.startswith("llm+route")
    if routed:
        ok = [k for k, (tags, _) in enumerate(results) if tags is not None]
        llm_spans, model_spans = spans_for_routing(data, model, [picked[k] for k in ok],
                                                    [results[k][0] for k in ok])
        accept, agreement = route(llm_spans, model_spans, [results[k][1] for k in ok], policy)
        accepted = {ok[j] for j in np.flatnonzero(accept)}
        for j, k in enumerate(ok):  # the human reviews the rejected ones: record LLM quality
            if k not in accepted:
                g = gold.label(picked[k])
                human = spans_for_routing(data, None, [picked[k]], [g])[0]
                evidence.append((results[k][1], float(agreement[j]),
                                 span_agreement(llm_spans[j], human[0]),
                                 cost.review_price(same_labels(data, results[k][0], g))))
    else:
        accepted = {k for k, (tags, _) in enumerate(results) if tags is not None}
    for k, i in enumerate(picked):
        tags = results[k][0]
        g = gold.label(i)
        labels[i] = list(tags) if k in accepted else g
        if tags is None:  # the LLM failed on it: a human labels it from scratch, and is paid
            counts["llm_failed"] += 1
            counts["human"] += 1
        elif k in accepted:
            counts["llm"] += 1
            counts["auto_accepted"] += routed
            counts["llm_correct_tokens"] += sum(a == b for a, b in zip(tags, g))
            counts["llm_tokens_total"] += len(g)
        else:  # routed to a human, who reviews the LLM's pre-annotation
            counts["reviewed_correct" if same_labels(data, tags, g) else "reviewed_edit"] += 1


def same_labels(data: Any, a: Sequence[str], b: Sequence[str]) -> bool:
    """Whether a pre-annotation needs no edit: the same entities (NER, strict spans after BIO
    repair) or the same choices (text classification)."""
    if data.task == "ner":
        return _entities(a) == _entities(b)
    return list(a) == list(b)


class PreLabels:
    """The LLM's up-front pre-annotations of part of the pool, and which of them humans reviewed.

    ``tags[i]`` / ``consistency[i]`` for every pool item the LLM labelled; items it failed on are
    in ``failed`` (counted, never labelled silently). ``review(idx)`` replaces the LLM labels of
    ``idx`` with gold in ``labels``; an item can be reviewed once (asserted).
    """

    def __init__(self, data: Any, idx: Sequence[int], llm: LLMOracle):
        self.data = data
        self.tags: dict[int, Labels] = {}
        self.consistency: dict[int, float] = {}
        self.failed: list[int] = []
        for i, (tags, cons) in zip(idx, llm.label_many(list(idx))):
            if tags is None:
                self.failed.append(int(i))
            else:
                self.tags[int(i)], self.consistency[int(i)] = list(tags), float(cons)
        self.reviewed: set[int] = set()

    def candidates(self) -> np.ndarray:
        """Pre-labelled items no human has reviewed yet, in pool order."""
        return np.array(sorted(set(self.tags) - self.reviewed), dtype=np.int64)

    def review(self, idx: Sequence[int], gold: GoldOracle, labels: dict[int, list],
               counts: dict[str, int]) -> None:
        idx = [int(i) for i in idx]
        assert not set(idx) & self.reviewed, "an item was reviewed twice"
        assert len(set(idx)) == len(idx), "duplicate items in one review batch"
        for i in idx:
            g = gold.label(i)
            counts["reviewed_correct" if same_labels(self.data, self.tags[i], g)
                   else "reviewed_edit"] += 1
            labels[i] = g
            self.reviewed.add(i)


# A picker chooses which ``n`` of the pre-labelled, unreviewed ``candidates`` humans review:
# ``pick(pre, candidates, n, model, outputs, strategy, labelled, rng) -> item ids``.
Picker = Callable[..., list[int]]


def _pick_uncertainty(pre: PreLabels, candidates: np.ndarray, n: int, model: Any, outputs: Any,
                      strategy: Any, labelled: np.ndarray, rng: np.random.Generator) -> list[int]:
    """The arm's query strategy on the local model (trained on the LLM labels too)."""
    return [int(i) for i in strategy.query(outputs, candidates, n, indices_labeled=labelled,
                                           rng=rng)]


def _lowest_first(scores: np.ndarray, candidates: np.ndarray, n: int,
                  rng: np.random.Generator) -> list[int]:
    """The ``n`` candidates of lowest score; ties broken by a seeded shuffle."""
    order = np.lexsort((rng.permutation(len(candidates)), scores))
    return [int(candidates[j]) for j in order[:n]]


def _pick_self_consistency(pre: PreLabels, candidates: np.ndarray, n: int, model: Any,
                           outputs: Any, strategy: Any, labelled: np.ndarray,
                           rng: np.random.Generator) -> list[int]:
    """Lowest LLM self-consistency first: the samples disagreed, the label is likeliest wrong."""
    scores = np.array([pre.consistency[int(i)] for i in candidates])
    return _lowest_first(scores, candidates, n, rng)


def _pick_disagreement(pre: PreLabels, candidates: np.ndarray, n: int, model: Any, outputs: Any,
                       strategy: Any, labelled: np.ndarray, rng: np.random.Generator) -> list[int]:
    """Lowest strict span agreement between the LLM's pre-annotation and the local model."""
    idx = [int(i) for i in candidates]
    llm_spans, model_spans = spans_for_routing(pre.data, model, idx, [pre.tags[i] for i in idx])
    scores = np.array([span_agreement(a, b) for a, b in zip(llm_spans, model_spans)])
    return _lowest_first(scores, candidates, n, rng)


PICKERS: dict[str, Picker] = {"uncertainty": _pick_uncertainty,
                              "self_consistency": _pick_self_consistency,
                              "disagreement": _pick_disagreement}


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
