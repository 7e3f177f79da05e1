"""Tolerant extraction and principled repair of LLM replies (pure functions, no I/O).

Repair policy: fix only what has one possible reading, record every fix, and return an error
(which the annotator turns into a re-ask, then into a reported failure) for everything else.

- JSON wrapped in prose or code fences: the first decodable JSON value is used.
- Labels: exact, case-insensitive, a ``B-``/``I-`` prefix on an entity type, a known synonym
  (PERSON -> PER) or a unique prefix (PERS -> PER) are mapped; a well-formed type that is not in
  the label set (EVENT, MONEY) means "not one of ours", i.e. O, and is dropped with a note;
  anything else (empty, numbers, sentences) is an error.
- Entity indices: when the echoed text disagrees with the tokens at those indices (a counting
  slip) and the text occurs exactly once in the sentence, the entity is moved there; otherwise an
  error. Exact duplicates are merged; overlapping different entities are an error.
- Tag lists (the paper's ``[[token, tag], ...]``): the echoed tokens are aligned to the input; a
  missing token is filled only when it cannot be anything else: punctuation not followed by an
  I- tag is O, a token between B-X/I-X and I-X is I-X; a missing *word* between O tokens could be
  a one-token entity, so that is an error (re-ask). I- without B- becomes B- (noted).
"""
from __future__ import annotations

import difflib
import json
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

SYNONYMS = {"PERSON": "PER", "PEOPLE": "PER", "LOCATION": "LOC", "PLACE": "LOC",
            "ORGANIZATION": "ORG", "ORGANISATION": "ORG", "COMPANY": "ORG", "TIME": "DATE",
            "DATETIME": "DATE"}
_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.S)
DROP = object()   # sentinel: a well-formed label outside the scheme, meaning O


@dataclass
class SentenceParse:
    tags: list[str] | None
    error: str | None = None
    repairs: list[str] = field(default_factory=list)
    # entities in reply order after repair (None where dropped): lets the caller map logprobs
    slots: list[tuple[int, int, str] | None] | None = None


@dataclass
class ChoiceParse:
    labels: list[str] | None
    error: str | None = None
    repairs: list[str] = field(default_factory=list)


def extract_json(raw: str | None) -> tuple[Any, list[str], str | None]:
    """``(value, notes, error)``: the reply's JSON value, tolerating prose and code fences."""
    if raw is None or not raw.strip():
        return None, [], "empty reply"
    try:
        return json.loads(raw), [], None
    except ValueError:
        pass
    for m in _FENCE.finditer(raw):
        try:
            return json.loads(m.group(1)), ["JSON taken out of a code fence"], None
        except ValueError:
            continue
    dec = json.JSONDecoder()
    for i, ch in enumerate(raw):
        if ch in "{[":
            try:
                value, _ = dec.raw_decode(raw, i)
            except ValueError:
                continue
            if isinstance(value, (dict, list)) and value:
                return value, ["JSON taken out of surrounding prose"], None
    return None, [], "no JSON object found in the reply"


def _norm_text(s: str) -> str:
    return "".join(unicodedata.normalize("NFC", s).split()).casefold()


def normalize_label(raw: Any, labels: Sequence[str], *, strip_bio: bool = True):
    """``(label | DROP | None, note | None)``; ``None`` means an unusable label (error)."""
    if not isinstance(raw, str) or not raw.strip():
        return None, None
    s = raw.strip()
    if strip_bio:
        m = re.fullmatch(r"[BIES][-_](.+)", s, re.I)
        if m:
            s = m.group(1)
    if s in labels:
        return s, (None if s == raw else f"label {raw!r} read as {s!r}")
    by_fold = {lab.casefold(): lab for lab in labels}
    key = s.casefold().replace(" ", "_")
    hit = by_fold.get(key) or (SYNONYMS.get(key.upper()) if SYNONYMS.get(key.upper()) in labels
                               else None)
    if hit is None and len(key) >= 3:
        pref = [lab for lab in labels if lab.casefold().startswith(key)
                or key.startswith(lab.casefold())]
        hit = pref[0] if len(pref) == 1 else None
    if hit is not None:
        return hit, f"label {raw!r} mapped to {hit!r}"
    if re.fullmatch(r"[A-Za-z][A-Za-z_ ]{1,30}", s):
        return DROP, f"label {raw!r} is not in {list(labels)}: read as O"
    return None, None


def _as_int(v: Any) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, str) and v.strip().isdigit():
        return int(v.strip())
    return None


def _find_text(tokens: Sequence[str], text: str) -> list[tuple[int, int]]:
    target = _norm_text(text)
    hits = []
    for i in range(len(tokens)):
        acc = ""
        for j in range(i, len(tokens)):
            acc += _norm_text(tokens[j])
            if acc == target:
                hits.append((i, j))
            if len(acc) >= len(target):
                break
    return hits


def _parse_entities(ents: Any, tokens: Sequence[str], labels: Sequence[str]) -> SentenceParse:
    if not isinstance(ents, list):
        return SentenceParse(None, '"entities" is not a list')
    n, repairs, slots, errors = len(tokens), [], [], []
    for k, e in enumerate(ents):
        if not isinstance(e, dict):
            errors.append(f"entity {k} is not an object")
            continue
        lab, note = normalize_label(e.get("label", e.get("type")), labels)
        if lab is None:
            errors.append(f"entity {k} has an unusable label {e.get('label')!r}")
            continue
        if note:
            repairs.append(note)
        first, last = _as_int(e.get("first", e.get("start"))), _as_int(e.get("last", e.get("end")))
        text = e.get("text") if isinstance(e.get("text"), str) and e.get("text").strip() else None
        ok = first is not None and last is not None and 0 <= first <= last < n
        if text is not None and (not ok or _norm_text(" ".join(tokens[first:last + 1]))
                                 != _norm_text(text)):
            hits = _find_text(tokens, text)
            if len(hits) == 1:
                repairs.append(f"entity {text!r} moved from tokens {first}..{last} to "
                               f"{hits[0][0]}..{hits[0][1]} where its text is")
                (first, last), ok = hits[0], True
            else:
                errors.append(f"entity {k} text {text!r} does not match tokens {first}..{last}"
                              + (" and occurs several times" if hits else ""))
                continue
        if not ok:
            errors.append(f"entity {k} has token indexes {e.get('first')!r}..{e.get('last')!r}"
                          f" outside 0..{n - 1}")
            continue
        slots.append(None if lab is DROP else (first, last, lab))
    if errors:
        return SentenceParse(None, "; ".join(errors), repairs)
    tags = ["O"] * n
    seen: set[tuple[int, int, str]] = set()
    for slot in slots:
        if slot is None or slot in seen:
            if slot is not None:
                repairs.append(f"duplicate entity {slot} merged")
            continue
        first, last, lab = slot
        if any(t != "O" for t in tags[first:last + 1]):
            return SentenceParse(None, f"entities overlap at tokens {first}..{last}", repairs)
        seen.add(slot)
        tags[first] = f"B-{lab}"
        tags[first + 1:last + 1] = [f"I-{lab}"] * (last - first)
    return SentenceParse(tags, None, repairs, slots)


def _norm_tag(raw: Any, labels: Sequence[str], prev: str):
    if isinstance(raw, str) and raw.strip().upper() in ("O", "0", "OUTSIDE"):
        return "O", None if raw == "O" else f"tag {raw!r} read as O"
    if not isinstance(raw, str):
        return None, None
    m = re.fullmatch(r"([BI])[-_](.+)", raw.strip(), re.I)
    lab, note = normalize_label(m.group(2) if m else raw, labels, strip_bio=False)
    if lab is None:
        return None, None
    if lab is DROP:
        return "O", note
    if m:
        tag = f"{m.group(1).upper()}-{lab}"
    else:  # a bare type: IO reading, continuing an entity of the same type
        tag = f"I-{lab}" if prev.endswith(f"-{lab}") else f"B-{lab}"
        note = f"tag {raw!r} read as {tag!r}"
    return tag, (note if tag != raw else None)


def _parse_tags(items: Any, tokens: Sequence[str], labels: Sequence[str]) -> SentenceParse:
    """The paper's [[token, tag], ...], plain tag lists, or [{"i": .., "tag": ..}]."""
    if not isinstance(items, list):
        return SentenceParse(None, "tag list is not a list")
    n, repairs = len(tokens), []
    raw_tags: list[Any] = [None] * n
    if items and all(isinstance(x, dict) and "i" in x for x in items):
        for x in items:
            i = _as_int(x["i"])
            if i is None or not 0 <= i < n:
                return SentenceParse(None, f"token index {x['i']!r} outside 0..{n - 1}")
            raw_tags[i] = x.get("tag")
    elif items and all(isinstance(x, (list, tuple)) and len(x) == 2 for x in items):
        echoed = [_norm_text(str(x[0])) for x in items]
        sm = difflib.SequenceMatcher(a=[_norm_text(t) for t in tokens], b=echoed, autojunk=False)
        for a, b, size in sm.get_matching_blocks():
            for d in range(size):
                raw_tags[a + d] = items[b + d][1]
        if len(items) != n:
            repairs.append(f"reply had {len(items)} tokens for {n}: aligned by token text")
    elif len(items) == n and all(isinstance(x, str) for x in items):
        raw_tags = list(items)
    else:
        return SentenceParse(None, f"reply has {len(items)} tags for {n} tokens")
    tags: list[str | None] = []
    for i, r in enumerate(raw_tags):
        if r is None:
            tags.append(None)
            continue
        tag, note = _norm_tag(r, labels, tags[-1] or "O" if tags else "O")
        if tag is None:
            return SentenceParse(None, f"token {i} has an unusable tag {r!r}", repairs)
        if note:
            repairs.append(note)
        tags.append(tag)
    for i in [i for i, t in enumerate(tags) if t is None]:
        prev = tags[i - 1] if i > 0 else "O"
        nxt = next((t for t in tags[i + 1:] if t is not None), "O")
        if not nxt.startswith("I-") and not any(c.isalnum() for c in tokens[i]):
            fill = "O"  # punctuation not continued by an entity: never an entity on its own
        elif nxt.startswith("I-") and prev != "O" and prev[2:] == nxt[2:]:
            fill = f"I-{nxt[2:]}"
        else:
            return SentenceParse(None, f"token {i} ({tokens[i]!r}) is missing from the reply "
                                       "and its tag cannot be inferred", repairs)
        tags[i] = fill
        repairs.append(f"missing token {i} ({tokens[i]!r}) filled with {fill} from its neighbours")
    fixed = list(tags)
    for i, t in enumerate(fixed):
        if t.startswith("I-") and (i == 0 or fixed[i - 1][2:] != t[2:]):
            fixed[i] = "B-" + t[2:]
            repairs.append(f"token {i}: {t} without B- made {fixed[i]}")
    return SentenceParse(fixed, None, repairs)


def parse_ner(raw: str | None, sentences: dict[int, Sequence[str]],
              labels: Sequence[str]) -> dict[int, SentenceParse]:
    """Parse one reply for the sentences ``{id: tokens}`` it answers; one result per id."""
    value, notes, err = extract_json(raw)
    if err:
        return {sid: SentenceParse(None, err) for sid in sentences}
    items: dict[int, Any] = {}
    if isinstance(value, dict) and isinstance(value.get("sentences"), list):
        value = value["sentences"]
    if isinstance(value, list) and all(isinstance(x, dict) and "id" in x for x in value):
        for x in value:
            sid = _as_int(x["id"])
            if sid in sentences and sid not in items:
                items[sid] = x
    elif len(sentences) == 1:  # a single sentence answered without the wrapper
        items[next(iter(sentences))] = value if isinstance(value, dict) else {"output": value}
    out = {}
    for sid, tokens in sentences.items():
        x = items.get(sid)
        if x is None:
            out[sid] = SentenceParse(None, f"sentence {sid} is missing from the reply")
            continue
        if "entities" in x:
            res = _parse_entities(x["entities"], tokens, labels)
        else:
            key = next((k for k in ("output", "tags", "tokens", "labels") if k in x), None)
            res = (_parse_tags(x[key], tokens, labels) if key else
                   SentenceParse(None, 'reply has neither "entities" nor a tag list'))
        res.repairs[:0] = notes
        out[sid] = res
    return out


def parse_choices(raw: str | None, choices: Sequence[str], multi_label: bool) -> ChoiceParse:
    value, notes, err = extract_json(raw)
    if err:
        return ChoiceParse(None, err)
    got = value.get("labels", value.get("label")) if isinstance(value, dict) else value
    got = [got] if isinstance(got, str) else got
    if not isinstance(got, list) or not got:
        return ChoiceParse(None, 'reply has no "label"', notes)
    picked, repairs = [], list(notes)
    for g in got:
        lab, note = normalize_label(g, choices, strip_bio=False)
        if lab is None or lab is DROP:
            return ChoiceParse(None, f"label {g!r} is not one of {list(choices)}", repairs)
        if note:
            repairs.append(note)
        if lab not in picked:
            picked.append(lab)
    if not multi_label and len(picked) > 1:
        return ChoiceParse(None, f"one label expected, got {picked}", repairs)
    return ChoiceParse(picked, None, repairs)
