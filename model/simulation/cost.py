"""The cost model and the LLM profiles of ``model.simulation``: labels are bought with money.

Nobody buys labels by count; they have a budget. Every simulated round records the cumulative
human and LLM dollars under :class:`CostModel`, and a run is judged by the F1 each policy reaches
at equal budgets (:func:`f1_at_budget`): the F1 of the last round whose total cost fits the
budget, never a value extrapolated beyond what an arm bought.

Human prices
  * from scratch: ``HUMAN_COST_PER_SENTENCE`` ($0.036, a lower bound; see its comment).
  * review of a pre-annotation = from-scratch price x a ratio chosen by whether the
    pre-annotation was already right (its entities equal the gold ones):
    ``REVIEW_RATIO_CORRECT`` = 0.5 - confirming a correct pre-annotation is a binary decision;
    Ganchev, Pereira, Mandel, Carroll & White (2007, "Semi-automated named entity annotation",
    ACL Linguistic Annotation Workshop, https://research.google/pubs/semi-automated-named-entity-annotation)
    cut NER annotation effort by up to 58 % by asking annotators only accept / reject decisions;
    we take 50 %, below their best case.
    ``REVIEW_RATIO_EDIT`` = 1.0 - a pre-annotation that needs edits is priced as labelling from
    scratch (no saving claimed: conservative, so pre-labelling is never flattered).
    Cross-check: with these two ratios a pre-annotator that is exactly right on 28-43 % of the
    sentences saves 14-21.5 % on average, the range Lingren et al. (2014, JAMIA 21(3):406-13,
    https://pmc.ncbi.nlm.nih.gov/articles/PMC3994857) measured for dictionary pre-annotation of
    clinical NER (13.85-21.5 % time saved per entity). Both ratios are parameters
    (``--review-ratio-correct``, ``--review-ratio-edit``); the split is our assumption.
LLM prices: per model profile (:data:`PROFILES`), in USD per 1M input / output tokens, applied to
the token usage the annotator reports (the fake server counts ~4 characters per token of our real
prompts), times the samples per sentence (each sample is a paid call).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["HUMAN_COST_PER_SENTENCE", "REVIEW_RATIO_CORRECT", "REVIEW_RATIO_EDIT",
           "DEFAULT_BUDGETS", "CostModel", "LLMProfile", "PROFILES", "get_profile",
           "f1_at_budget", "mean_at_budget", "format_point", "at_budgets", "best_at"]

# Human price: a LOWER bound, so the LLM saving we report is a floor. Amazon SageMaker Ground
# Truth's Mechanical Turk rate for named-entity labelling is $0.012 per text unit per worker, with
# 3 workers per object by default for consensus (tabulated at
# https://www.wring.co/blog/aws-sagemaker-ground-truth-pricing-guide, 2026): 3 x 0.012 = $0.036.
# Annotators fluent in Hausa/Yoruba cost more than an anonymous crowd.
HUMAN_COST_PER_SENTENCE = 0.036
REVIEW_RATIO_CORRECT = 0.5   # see the module docstring: Ganchev et al. 2007, below their 58 %
REVIEW_RATIO_EDIT = 1.0      # no saving claimed for a pre-annotation that needs edits
DEFAULT_BUDGETS = (2.5, 5.0, 10.0, 20.0, 40.0)


@dataclass(frozen=True)
class CostModel:
    """What one label costs: human from scratch, human review (by correctness), LLM tokens."""

    human_per_sentence: float = HUMAN_COST_PER_SENTENCE
    review_ratio_correct: float = REVIEW_RATIO_CORRECT
    review_ratio_edit: float = REVIEW_RATIO_EDIT
    llm_price_in_per_1m: float = 10.0    # the paper's GPT-4-Turbo, as LLMConfig's default
    llm_price_out_per_1m: float = 30.0
    llm_samples: int = 3
    llm_profile: str | None = None

    def __post_init__(self) -> None:
        for k in ("human_per_sentence", "review_ratio_correct", "review_ratio_edit",
                  "llm_price_in_per_1m", "llm_price_out_per_1m"):
            if getattr(self, k) < 0:
                raise ValueError(f"cost model: {k} must be >= 0, got {getattr(self, k)}")

    def human(self, n_scratch: int) -> float:
        """Dollars for ``n_scratch`` sentences a human labels from nothing."""
        return n_scratch * self.human_per_sentence

    def review_price(self, correct: bool) -> float:
        """Dollars for one human review of a pre-annotation that was (not) already right."""
        ratio = self.review_ratio_correct if correct else self.review_ratio_edit
        return self.human_per_sentence * ratio

    def review(self, n_correct: int, n_edit: int) -> float:
        return n_correct * self.review_price(True) + n_edit * self.review_price(False)

    def llm(self, tokens_in: int, tokens_out: int) -> float:
        """Dollars for this token usage (all samples' calls together) at the profile's prices."""
        return (tokens_in * self.llm_price_in_per_1m + tokens_out * self.llm_price_out_per_1m) / 1e6

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        """The cost model in one line, printed with every report."""
        h = self.human_per_sentence
        return (f"cost model: human ${h:.4f}/sentence from scratch (3 MTurk workers x $0.012, a "
                f"lower bound); review of a pre-annotation ${self.review_price(True):.4f} when it "
                f"is right (x{self.review_ratio_correct:g}), ${self.review_price(False):.4f} when "
                f"it needs edits (x{self.review_ratio_edit:g}); LLM "
                f"{self.llm_profile or 'prices'} ${self.llm_price_in_per_1m:g} / "
                f"${self.llm_price_out_per_1m:g} per 1M input / output tokens, "
                f"{self.llm_samples} sample(s) per sentence")


@dataclass(frozen=True)
class LLMProfile:
    """A published LLM's NER quality per language and its list prices.

    ``metric`` is ``"entity_f1"`` (strict span F1 of one sample; fake persona
    ``systematic-<F>``) or ``"entity_token_acc"`` (accuracy on gold entity tokens, the paper's
    metric; persona ``systematic-acc-<A>``). A ``"*"`` score applies to every language (the paper
    reports one range for all its languages)."""

    name: str
    metric: str
    scores: dict[str, float]
    price_in_per_1m: float
    price_out_per_1m: float
    source: str

    def score(self, lang: str) -> float:
        if lang in self.scores:
            return self.scores[lang]
        if "*" in self.scores:
            return self.scores["*"]
        raise ValueError(f"LLM profile {self.name!r} has no figure for language {lang!r}; it has "
                         f"{sorted(self.scores)}")

    def persona(self, lang: str) -> str:
        """The fake-server persona that reproduces this profile's quality on ``lang``."""
        s = self.score(lang)
        return f"systematic-{s:g}" if self.metric == "entity_f1" else f"systematic-acc-{s:g}"


_AFROBENCH = ("AfroBench, results/masakhaner, 0-shot, best prompt (entity F1 of one sample)")
PROFILES: dict[str, LLMProfile] = {p.name: p for p in (
    LLMProfile("afrobench-gpt-4o", "entity_f1", {"hau": 0.509, "yor": 0.325, "swa": 0.638},
               2.50, 10.00, f"{_AFROBENCH}; OpenAI GPT-4o list price $2.50 / $10 per 1M tokens"),
    LLMProfile("afrobench-gemini-1.5-pro", "entity_f1", {"hau": 0.541, "yor": 0.347, "swa": 0.668},
               1.25, 5.00, f"{_AFROBENCH}; Google Gemini 1.5 Pro list price for prompts <= 128K "
                           "tokens (Oct 2024), $1.25 / $5 per 1M - not re-checked in this session"),
    LLMProfile("afrobench-gemma-2-27b", "entity_f1", {"hau": 0.580, "yor": 0.531, "swa": 0.678},
               0.65, 0.65, f"{_AFROBENCH}; hosted open-model rate: OpenRouter google/gemma-2-27b-it "
                           "$0.65 / $0.65 per 1M (https://openrouter.ai/google/gemma-2-27b-it)"),
    LLMProfile("paper-fewshot", "entity_token_acc", {"*": 0.90}, 10.00, 30.00,
               "Kholodna et al. 2024, few-shot GPT-4-Turbo: entity-token accuracy 0.87-0.94 "
               "(midpoint 0.90), every language; $10 / $30 per 1M tokens as in the paper"),
)}


def get_profile(name: str) -> LLMProfile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown LLM profile {name!r}; expected one of {sorted(PROFILES)}") \
            from None


def f1_at_budget(rows: Sequence[dict], budget: float) -> dict[str, Any]:
    """F1 of ONE arm-seed curve at ``budget``: the last round whose total cost <= budget.

    Returns ``{"f1", "cost", "round", "n_labeled", "status"}``; status ``ok`` (the arm spent up
    to the budget), ``below_first_round`` (its first round - the seed set, or an up-front
    pre-labelling - already costs more: f1 None), ``pool_exhausted`` / ``rounds_ended`` (the arm
    stopped with money left: its F1 is what it reached, shown with what it spent, never
    extrapolated to the budget).
    """
    ordered = sorted(rows, key=lambda r: r["round"])
    fits = [r for r in ordered if r["total_cost_usd"] <= budget + 1e-12]
    if not fits:
        return {"f1": None, "cost": ordered[0]["total_cost_usd"], "round": None,
                "n_labeled": None, "status": "below_first_round"}
    r = fits[-1]
    status = "ok"
    if r is ordered[-1] and not r.get("stopped_at_budget"):
        status = "pool_exhausted" if r.get("n_pool_left", 1) == 0 else "rounds_ended"
    return {"f1": float(r["f1"]), "cost": float(r["total_cost_usd"]), "round": int(r["round"]),
            "n_labeled": int(r["n_labeled"]), "status": status}


def mean_at_budget(per_seed: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Mean over seeds of :func:`f1_at_budget` points; the worst status of any seed is kept
    (a budget one seed cannot afford is not averaged over the others)."""
    order = ("below_first_round", "pool_exhausted", "rounds_ended", "ok")
    status = min((p["status"] for p in per_seed), key=order.index)
    if status == "below_first_round":
        return {"f1": None, "cost": min(p["cost"] for p in per_seed), "status": status,
                "seeds": len(per_seed)}
    return {"f1": float(sum(p["f1"] for p in per_seed) / len(per_seed)),
            "cost": float(sum(p["cost"] for p in per_seed) / len(per_seed)), "status": status,
            "seeds": len(per_seed)}


def format_point(p: dict[str, Any]) -> str:
    """A table cell: ``0.612``; ``0.512 (pool out at $4.10)``; ``- (first round $5.20)``."""
    if p["f1"] is None:
        return f"- (first round ${p['cost']:.2f})"
    if p["status"] == "ok":
        return f"{p['f1']:.3f}"
    why = "pool out" if p["status"] == "pool_exhausted" else "rounds ended"
    return f"{p['f1']:.3f} ({why} at ${p['cost']:.2f})"


def at_budgets(rows: Sequence[dict], budgets: Sequence[float]) -> dict[str, dict[float, dict]]:
    """``{"strategy/oracle": {budget: mean point over seeds}}`` from a run's rows (rows saved
    before costs were recorded have no ``total_cost_usd``: such arms are left out)."""
    by: dict[str, dict[int, list[dict]]] = {}
    for r in rows:
        if "total_cost_usd" in r:
            by.setdefault(f"{r['strategy']}/{r['oracle']}", {}).setdefault(r["seed"], []).append(r)
    return {arm: {float(b): mean_at_budget([f1_at_budget(rs, b) for rs in seeds.values()])
                  for b in budgets} for arm, seeds in by.items()}


def best_at(points: dict[str, dict[float, dict]], budget: float) -> tuple[str, dict] | None:
    """The arm with the highest measured F1 within ``budget`` (an arm that ended with money
    left competes with what it reached; one whose first round costs more does not)."""
    ok = [(arm, p[budget]) for arm, p in points.items() if p[budget]["f1"] is not None]
    return max(ok, key=lambda kv: kv[1]["f1"]) if ok else None
