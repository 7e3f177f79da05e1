"""Confidence from token logprobs and from self-consistency votes (pure functions).

Logprobs: the probability the model gave a decision is the product of the probabilities of the
completion tokens that spell it. For an entity that is its whole JSON object except the echoed
``text`` (a copy, certain once the indices are chosen); for "is there another entity?" it is
the token right after ``"entities": [`` or after an entity's closing brace (``]`` = stop,
``{``/``,`` = one more), which is where a model that hesitates about missing an entity shows it.

Votes: with n samples, a span's vote share is the fraction of the successful samples that
contain exactly that span. A region's score is vote share x mean probability (either alone when
the other is unavailable); with one sample and no logprobs there is no evidence and the score is
``None`` rather than a made-up 1.0.
"""
from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

from model.llm.parse import SentenceParse, extract_json

_OBJ = re.compile(r'\{[^{}]*"label"[^{}]*\}')
_TEXT = re.compile(r'"text"\s*:\s*"(?:[^"\\]|\\.)*"')
_ENTS = re.compile(r'"entities"\s*:\s*\[')


class _Probs:
    """Maps character ranges of the reply to the product of their tokens' probabilities."""

    def __init__(self, raw: str, logprobs: Sequence[tuple[str, float]]) -> None:
        self.ranges, pos = [], 0
        for tok, lp in logprobs:
            self.ranges.append((pos, pos + len(tok), lp))
            pos += len(tok)
        self.valid = pos == len(raw)

    def prob(self, start: int, end: int, skip: tuple[int, int] | None = None) -> float:
        total = 0.0
        for a, b, lp in self.ranges:
            if b <= start or a >= end or (skip and a >= skip[0] and b <= skip[1]):
                continue
            total += lp
        return math.exp(total)

    def at(self, pos: int) -> float | None:
        for a, b, lp in self.ranges:
            if a <= pos < b:
                return math.exp(lp)
        return None


def _next_char(raw: str, pos: int) -> int:
    while pos < len(raw) and raw[pos].isspace():
        pos += 1
    return pos


def ner_reply_probs(raw: str | None, logprobs, parsed: dict[int, SentenceParse]):
    """``{sid: (span_probs {(first, last, label): p}, decision_probs [p, ...])}``, or ``{}``."""
    if not raw or not logprobs:
        return {}
    probs = _Probs(raw, logprobs)
    value, _, err = extract_json(raw)
    if not probs.valid or err:
        return {}
    items = value.get("sentences") if isinstance(value, dict) else value
    if isinstance(value, dict) and "entities" in value and len(parsed) == 1:
        items = [{"id": next(iter(parsed)), "entities": value["entities"]}]
    if not isinstance(items, list):
        return {}
    objs, lists = list(_OBJ.finditer(raw)), list(_ENTS.finditer(raw))
    with_ents = [x for x in items if isinstance(x, dict) and isinstance(x.get("entities"), list)]
    if len(lists) != len(with_ents) or len(objs) != sum(len(x["entities"]) for x in with_ents):
        return {}
    out, k = {}, 0
    for item, lst in zip(with_ents, lists):
        mine, k = objs[k:k + len(item["entities"])], k + len(item["entities"])
        sid = item.get("id") if len(parsed) > 1 else next(iter(parsed))
        res = parsed.get(sid) if isinstance(sid, int) else None
        if res is None or res.tags is None or res.slots is None or len(res.slots) != len(mine):
            continue
        decisions = [probs.at(_next_char(raw, lst.end()))]
        spans: dict[tuple[int, int, str], float] = {}
        for slot, m in zip(res.slots, mine):
            t = _TEXT.search(m.group(0))
            skip = (m.start() + t.start(), m.start() + t.end()) if t else None
            if slot is not None:
                spans[slot] = probs.prob(m.start(), m.end(), skip)
            decisions.append(probs.at(_next_char(raw, m.end())))
        out[sid] = (spans, [d for d in decisions if d is not None])
    return out


def choice_probs(raw: str | None, logprobs, picked: Sequence[str]) -> dict[str, float]:
    if not raw or not logprobs or not picked:
        return {}
    probs = _Probs(raw, logprobs)
    key = re.search(r'"labels?"\s*:\s*', raw)
    if not probs.valid or key is None:
        return {}
    out = {}
    for lab in picked:
        m = re.compile(r'"\s*' + re.escape(lab) + r'\s*"', re.I).search(raw, key.end())
        if m:
            out[lab] = probs.prob(m.start(), m.end())
    return out


def majority_tags(samples: Sequence[Sequence[str]]) -> tuple[list[str], list[float]]:
    """Token-wise majority tag (ties: the earliest sample's tag) and its vote share; BIO fixed."""
    n = len(samples)
    tags, shares = [], []
    for col in zip(*samples):
        counts = Counter(col)
        best = max(counts.values())
        tag = next(t for t in col if counts[t] == best)
        tags.append(tag)
        shares.append(best / n)
    for i, t in enumerate(tags):
        if t.startswith("I-") and (i == 0 or tags[i - 1][2:] != t[2:]):
            tags[i] = "B-" + t[2:]
    return tags, shares


def tag_slots(tags: Sequence[str]) -> list[tuple[int, int, str]]:
    slots: list[tuple[int, int, str]] = []
    for i, t in enumerate(tags):
        if t.startswith("B-") or (t.startswith("I-") and not (slots and slots[-1][1] == i - 1
                                                               and slots[-1][2] == t[2:])):
            slots.append((i, i, t[2:]))
        elif t.startswith("I-"):
            slots[-1] = (slots[-1][0], i, slots[-1][2])
    return slots


def combine(vote: float | None, probs: Sequence[float]) -> float | None:
    p = sum(probs) / len(probs) if probs else None
    if vote is None:
        return p
    return vote * p if p is not None else vote
