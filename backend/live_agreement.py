"""Live agreement and LLM routing, computed from what Label Studio already holds.

Every human annotation of a task that carried an LLM pre-annotation is a fresh gold label for the
LLM (and every annotation of a task that carried a local-model prediction, for the local model).
At each training we recompute, per project and per label, strict entity F1 and token-level
Cohen's kappa of each source against the humans' final labels, keep a history for the plot, fit
the routing thresholds on those reviewed tasks (``model.active.routing.fit_thresholds``), and warn
when the LLM falls below what the selection run measured for it.

Routing (extra param ``{"routing": true}``): unlabelled tasks whose LLM labels are self-consistent
and agree with the local model's independent prediction are added to the training set as
``llm-auto`` examples. Human labels always win (only unlabelled tasks qualify); the accepted task
ids are listed in the version's metadata and in ``GET /agreement``; turning routing off drops them
from the next training.
"""
from __future__ import annotations

import logging
import math
import time
from typing import Any

from backend.ls_json import first_prediction, prediction_spans
from backend.model_store import ModelStore, read_json, write_json_atomic
from model.spec import TaskSpec
from model.tokenize import spans_to_bio, tokenize
from model.types import Example, Span

log = logging.getLogger(__name__)
WARN_MARGIN_F1 = 0.05  # warn when live LLM F1 is this far below the selection run's
MIN_WARN_SUPPORT = 20


def _nan_to_none(x: Any) -> Any:
    if isinstance(x, float) and math.isnan(x):
        return None
    if isinstance(x, dict):
        return {k: _nan_to_none(v) for k, v in x.items()}
    return x


def _score(gold: list[list[str]], pred: list[list[str]]) -> dict:
    from model.agreement import cohen_kappa, entity_scores

    flat_g = [t for s in gold for t in s]
    flat_p = [t for s in pred for t in s]
    sc = entity_scores(gold, pred)
    return _nan_to_none({"n_tasks": len(gold), "entity_f1": sc["f1"], "precision": sc["precision"],
                         "recall": sc["recall"], "token_kappa": cohen_kappa(flat_g, flat_p),
                         "per_label": {k: {"f1": v["f1"], "support": v["support"]} for k, v in sc["per_type"].items()}})


def update(store: ModelStore, project_id: int, spec: TaskSpec, tasks: list[dict],
           examples: dict[int, Example]) -> dict:
    """Recompute live agreement from ``tasks`` (with predictions) and human ``examples`` by task id."""
    if spec.ner is None:
        return {}
    out: dict[str, Any] = {"updated_at": time.time(), "sources": {}}
    reviewed_llm: list[tuple[float, list[Span], list[Span] | None, list[Span]]] = []
    for source in ("llm", "model"):
        gold, pred = [], []
        for t in tasks:
            ex = examples.get(t.get("id"))
            p = first_prediction(t, source)
            if ex is None or p is None:
                continue
            toks = tokenize(ex.text)
            human = [s for s in ex.spans if s.label in spec.ner.labels]
            mine = prediction_spans(p, spec)
            gold.append(spans_to_bio(toks, human))
            pred.append(spans_to_bio(toks, mine))
            if source == "llm":
                mp = first_prediction(t, "model")
                reviewed_llm.append((float(p.get("score") or 0.0), mine,
                                     prediction_spans(mp, spec) if mp else None, human))
        if gold:
            out["sources"][source] = _score(gold, pred)
    out["routing"] = _fit_routing(reviewed_llm)
    prev = read_json(store.project_dir(project_id) / "agreement.json", {}) or {}
    history = prev.get("history", [])
    if out["sources"]:
        history.append({"t": out["updated_at"], **{k: v.get("entity_f1") for k, v in out["sources"].items()},
                        "n_llm": out["sources"].get("llm", {}).get("n_tasks", 0)})
    out["history"] = history[-500:]
    out["warnings"] = _warnings(store, project_id, out)
    for w in out["warnings"]:
        log.warning("project %s: %s", project_id, w)
    write_json_atomic(store.project_dir(project_id) / "agreement.json", out)
    return out


def _fit_routing(reviewed: list) -> dict:
    from model.active.disagreement import span_agreement
    from model.active.routing import fit_thresholds

    usable = [(c, llm, model, human) for c, llm, model, human in reviewed if model is not None]
    if not usable:
        return {"policy": None, "reviewed": 0}
    as_t = lambda spans: [(s.start, s.end, s.label) for s in spans]  # noqa: E731
    cons = [c for c, *_ in usable]
    agree = [span_agreement(as_t(llm), as_t(model)) for _, llm, model, _ in usable]
    quality = [span_agreement(as_t(llm), as_t(human)) for _, llm, _, human in usable]
    policy = fit_thresholds(cons, agree, quality)
    return {"policy": policy.to_dict(), "reviewed": len(usable)}


def _warnings(store: ModelStore, project_id: int, out: dict) -> list[str]:
    llm = out["sources"].get("llm")
    sel = read_json(store.project_dir(project_id) / "selection" / "selection.json")
    if not llm or not sel or llm.get("entity_f1") is None or llm["n_tasks"] < MIN_WARN_SUPPORT:
        return []
    winner = (sel.get("decision") or {}).get("winner")
    cand = (sel.get("candidates") or {}).get(winner) if winner else None
    measured = ((cand or {}).get("metrics") or {}).get("f1_mean")
    if measured is None:
        return []
    measured = measured / 100 if measured > 1 else measured
    if llm["entity_f1"] < measured - WARN_MARGIN_F1:
        return [f"LLM entity F1 against your annotators is {llm['entity_f1']:.3f} on {llm['n_tasks']} tasks, "
                f"below the {measured:.3f} the selection run measured for {winner}"]
    return []


def auto_accepted(store: ModelStore, project_id: int, spec: TaskSpec, tasks: list[dict],
                  agreement: dict, key: str) -> list[Example]:
    """Unlabelled tasks whose LLM labels the fitted routing policy accepts, as training examples."""
    from model.active.routing import RoutingPolicy, route

    pol = (agreement.get("routing") or {}).get("policy")
    if spec.ner is None or not pol or pol.get("min_consistency") is None:
        return []
    policy = RoutingPolicy(pol["min_consistency"], pol["min_agreement"])
    cands = []
    for t in tasks:
        if any(not a.get("was_cancelled") for a in t.get("annotations") or []):
            continue
        lp, mp = first_prediction(t, "llm"), first_prediction(t, "model")
        text = (t.get("data") or {}).get(key)
        if lp is None or mp is None or not isinstance(text, str):
            continue
        cands.append((t["id"], text, float(lp.get("score") or 0.0), prediction_spans(lp, spec), prediction_spans(mp, spec)))
    if not cands:
        return []
    as_t = lambda spans: [(s.start, s.end, s.label) for s in spans]  # noqa: E731
    mask, _ = route([as_t(c[3]) for c in cands], [as_t(c[4]) for c in cands], [c[2] for c in cands], policy)
    return [Example(text=c[1], spans=c[3], task_id=c[0]) for c, ok in zip(cands, mask) if ok]


def plot(store: ModelStore, project_id: int) -> bytes:
    """A small PNG of live entity F1 per source over trainings."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = read_json(store.project_dir(project_id) / "agreement.json", {}) or {}
    hist = data.get("history", [])
    fig, ax = plt.subplots(figsize=(5, 3), dpi=100)
    for source, color in (("llm", "tab:orange"), ("model", "tab:blue")):
        ys = [h.get(source) for h in hist]
        xs = [i + 1 for i, y in enumerate(ys) if y is not None]
        ax.plot(xs, [y for y in ys if y is not None], marker="o", color=color, label=source)
    ax.set_xlabel("training")
    ax.set_ylabel("entity F1 vs humans")
    ax.set_ylim(0, 1)
    ax.set_title(f"project {project_id}: live agreement")
    ax.legend(loc="lower right")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()
