"""The choice rule: which candidate becomes the project's annotator, and why each other lost.

Default (``ChoiceRule()``), stated in every report:
1. a candidate is *eligible* when its self-agreement across runs (Krippendorff's alpha, nominal,
   token level) is >= 0.80, its format-failure rate is <= 5 %, and its cost per 1,000 sentences
   is <= the cap (no cap by default). An undefined alpha (all runs gave one single tag to every
   token, so alpha has no variation to measure) passes when the runs agree perfectly (observed
   agreement 1.0) and fails otherwise;
2. among the eligible, the highest entity F1 (mean over runs, strict seqeval) wins;
3. a *tie* is an F1 within ``tie_points`` = 0.5 F1 points (0.005) of the best: tied candidates
   are ordered by cost per 1,000 sentences (cheaper first), then by F1;
4. when nobody is eligible there is no winner: the report lists what failed, and no env file
   is written (a bad annotator silently poisoning the loop is worse than none).
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

F1_KEYS = ("f1_mean", "f1_majority")


@dataclass(frozen=True)
class ChoiceRule:
    """Thresholds of the rule; F1 values are fractions (0..1), ``tie_points`` is in F1 points."""

    min_alpha: float = 0.8
    max_failure_rate: float = 0.05
    max_cost_per_1k: float | None = None
    tie_points: float = 0.5
    f1_key: str = "f1_mean"

    def __post_init__(self) -> None:
        if self.f1_key not in F1_KEYS:
            raise ValueError(f"unknown f1_key {self.f1_key!r}; expected one of {F1_KEYS}")
        if self.tie_points < 0:
            raise ValueError("tie_points must be >= 0")

    def describe(self) -> str:
        cap = ("no cost cap" if self.max_cost_per_1k is None
               else f"cost per 1,000 sentences <= ${self.max_cost_per_1k:g}")
        which = "mean over runs" if self.f1_key == "f1_mean" else "of the majority vote"
        return (f"highest entity F1 ({which}) among candidates with self-agreement alpha >= "
                f"{self.min_alpha:g}, format-failure rate <= {self.max_failure_rate:.0%} and {cap}; "
                f"F1 within {self.tie_points:g} points of the best counts as a tie, and a tie goes "
                "to the cheaper candidate")

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Ranked:
    """One candidate's place: ``rank`` 1 is the winner; ``reasons`` say why it lost (empty for
    the winner); ``eligible`` is False when a hard condition failed."""

    name: str
    rank: int
    eligible: bool
    f1: float
    cost_per_1k: float
    reasons: list[str] = field(default_factory=list)


@dataclass
class Decision:
    winner: str | None
    ranking: list[Ranked]
    rule: ChoiceRule

    def as_dict(self) -> dict:
        return {"winner": self.winner, "rule": self.rule.as_dict(), "rule_text": self.rule.describe(),
                "ranking": [asdict(r) for r in self.ranking]}


def _failed_conditions(m: Mapping, rule: ChoiceRule) -> list[str]:
    out = []
    alpha = m.get("alpha_runs", math.nan)
    if m.get("format_failure_rate", 0.0) >= 1.0:
        return [f"no run produced a usable answer (format-failure rate 100% > "
                f"{rule.max_failure_rate:.0%})"]
    if m.get("runs", 2) < 2:
        out.append("self-agreement needs at least 2 runs per sentence")
    elif alpha is None or math.isnan(alpha):
        if m.get("percent_agreement_runs") != 1.0:
            out.append("self-agreement alpha is undefined and the runs do not agree perfectly")
    elif alpha < rule.min_alpha:
        out.append(f"self-agreement alpha {alpha:.3f} < {rule.min_alpha:g}")
    fail = m.get("format_failure_rate", 0.0)
    if fail > rule.max_failure_rate:
        out.append(f"format-failure rate {fail:.1%} > {rule.max_failure_rate:.0%}")
    cost = m.get("cost_per_1k_usd", 0.0)
    if rule.max_cost_per_1k is not None and (cost is None or math.isnan(cost)):
        out.append("cost unknown (every answer came from the cache), so the cost cap cannot be checked")
    elif rule.max_cost_per_1k is not None and cost > rule.max_cost_per_1k:
        out.append(f"cost ${cost:.4f} per 1,000 sentences > cap ${rule.max_cost_per_1k:g}")
    f1 = m.get(rule.f1_key, math.nan)
    if f1 is None or math.isnan(f1):
        out.append("entity F1 undefined (no entities in gold or predictions)")
    return out


def choose(metrics: Mapping[str, Mapping], rule: ChoiceRule | None = None) -> Decision:
    """Rank candidates (``name -> evaluate() figures``) by the rule; see the module docstring."""
    rule = rule or ChoiceRule()
    tie = rule.tie_points / 100.0
    rows = []
    for name, m in metrics.items():
        f1 = m.get(rule.f1_key, math.nan)
        cost = m.get("cost_per_1k_usd", 0.0)
        cost = math.inf if cost is None or math.isnan(cost) else float(cost)  # unknown sorts last
        rows.append(Ranked(name, 0, True, f1 if f1 is not None else math.nan, cost,
                           _failed_conditions(m, rule)))
        rows[-1].eligible = not rows[-1].reasons
    eligible = [r for r in rows if r.eligible]
    best = max((r.f1 for r in eligible), default=math.nan)
    tied = sorted((r for r in eligible if r.f1 >= best - tie - 1e-12),
                  key=lambda r: (r.cost_per_1k, -r.f1, r.name))
    rest = sorted((r for r in eligible if r not in tied), key=lambda r: (-r.f1, r.cost_per_1k, r.name))
    losers = sorted((r for r in rows if not r.eligible),
                    key=lambda r: (len(r.reasons), -(r.f1 if not math.isnan(r.f1) else -1), r.name))
    ordered = tied + rest + losers
    winner = tied[0] if tied else None
    for i, r in enumerate(ordered, 1):
        r.rank = i
        if winner is None or r is winner or not r.eligible:
            continue
        gap = (winner.f1 - r.f1) * 100
        if r in tied:
            r.reasons.append(
                f"tied on F1 with {winner.name} (within {rule.tie_points:g} points: "
                f"{r.f1 * 100:.1f} vs {winner.f1 * 100:.1f}) but costs "
                f"${r.cost_per_1k - winner.cost_per_1k:.4f} more per 1,000 sentences"
                if r.cost_per_1k > winner.cost_per_1k else
                f"tied on F1 and cost with {winner.name}; {winner.name} has the higher F1 or name order")
        else:
            r.reasons.append(f"entity F1 {gap:.1f} points lower than {winner.name} "
                             f"({r.f1 * 100:.1f} vs {winner.f1 * 100:.1f})")
    return Decision(winner.name if winner else None, ordered, rule)
