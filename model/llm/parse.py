"""Tolerant extraction and principled repair of LLM replies (pure functions, no I/O).

Repair policy: fix only what has one possible reading, record every fix, and return an error
(which the annotator turns into a re-ask, then into a reported failure) for everything else.

- The reply text goes through ``model.llm.reply`` first (reasoning blocks, drafts, fences,
  Python literals): the last answer-shaped JSON value is parsed.
- Labels: a project's own ``label_map`` (Label Studio extra param) first, then exact,
  case-insensitive, a ``B-``/``I-`` prefix on an entity type, a known synonym (``SYNONYMS``:
  the OntoNotes/spaCy GPE/NORP/FAC, PERSON, ORGANIZATION, DATE_TIME ...) or a unique prefix
  (PERS -> PER) are mapped; a well-formed type that is not in the label set (EVENT, MONEY) means
  "not one of ours", i.e. O: dropped with a note and counted in ``SentenceParse.unknown_labels``
  so that a run reports it; anything else (empty, numbers, sentences) is an error.
- Entity indices: the echoed text is compared with the tokens after Unicode folding (``fold``:
  NFKD without combining marks, one apostrophe, Hausa hook letters as plain ones), a match only
  folding explains being a noted repair. When the text disagrees with the tokens at those
  indices (a counting slip) and occurs exactly once in the sentence, the entity is moved there;
  otherwise an error. Exact duplicates are merged; overlapping different entities are an error.
- Batches: sentence objects are matched by ``id``; without ids, by order when their count is the
  batch's. A truncated reply (``salvage=True``) gives every sentence object that is complete.
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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from model.llm.reply import extract_json, json_values, strip_reasoning

SYNONYMS = {"PERSON": "PER", "PEOPLE": "PER", "PERS": "PER",
            "LOCATION": "LOC", "PLACE": "LOC", "GPE": "LOC", "NORP": "LOC", "FAC": "LOC",
            "FACILITY": "LOC", "GEO": "LOC", "CITY": "LOC", "COUNTRY": "LOC",
            "ORGANIZATION": "ORG", "ORGANISATION": "ORG", "COMPANY": "ORG", "ORG_NAME": "ORG",
            "ORGANIZATION_NAME": "ORG", "INSTITUTION": "ORG",
            "TIME": "DATE", "DATETIME": "DATE", "DATE_TIME": "DATE", "DATE_EXPRESSION": "DATE"}
_APOSTROPHES = dict.fromkeys(map(ord, "\u02bc\u2019\u2018\u02bb\u0060\u00b4\u2032\u02b9"), "'")
_HOOKS = str.maketrans("\u0253\u0257\u0199\u01b4\u0181\u018a\u0198\u01b3", "bdkyBDKY")
DROP = object()   # sentinel: a well-formed label outside the scheme, meaning O


@dataclass
class SentenceParse:
    tags: list[str] | None
    error: str | None = None
    repairs: list[str] = field(default_factory=list)
    # entities in reply order after repair (None where dropped): lets the caller map logprobs
    slots: list[tuple[int, int, str] | None] | None = None
    unknown_labels: list[str] = field(default_factory=list)  # read as O: reported per run


@dataclass
class ChoiceParse:
    labels: list[str] | None
    error: str | None = None
    repairs: list[str] = field(default_factory=list)


def _norm_text(s: str) -> str:
    return "".join(unicodedata.normalize("NFC", s).split()).casefold()


def fold(s: str) -> str:
    """Text for a lenient comparison: models echo ``Bedie`` for ``Bédié``, ``dʼIvoire`` for
    ``d'Ivoire`` and ``Kano`` for ``Ƙano``; whitespace and case never count."""
    s = unicodedata.normalize("NFKD", s.translate(_HOOKS))
    s = "".join(c for c in s if not unicodedata.combining(c)).translate(_APOSTROPHES)
    return "".join(s.split()).casefold()


def _mapped(raw: str, labels: Sequence[str], label_map: Mapping[str, str] | None):
    """A project's own mapping (case-insensitive keys); ``"O"`` as the target means drop."""
    if not label_map:
        return None
    for k, v in label_map.items():
        if isinstance(k, str) and k.strip().casefold() == raw.strip().casefold():
            if isinstance(v, str) and v.strip().upper() == "O":
                return DROP
            return v if v in labels else None
    return None


def normalize_label(raw: Any, labels: Sequence[str], *, strip_bio: bool = True,
                    label_map: Mapping[str, str] | None = None):
    """``(label | DROP | None, note | None)``; ``None`` means an unusable label (error)."""
    if not isinstance(raw, str) or not raw.strip():
        return None, None
    s = raw.strip()
    for cand in (s, re.sub(r"^[BIES][-_]", "", s, flags=re.I) if strip_bio else s):
        hit = _mapped(cand, labels, label_map)
        if hit is DROP:
            return DROP, f"label {raw!r} read as O (project label_map)"
        if hit is not None:
            return hit, (None if hit == raw else f"label {raw!r} mapped to {hit!r} (project label_map)")
    if strip_bio:
        m = re.fullmatch(r"[BIES][-_](.+)", s, re.I)
        if m:
            s = m.group(1)
    if s in labels:
        return s, (None if s == raw else f"label {raw!r} read as {s!r}")
    by_fold = {lab.casefold(): lab for lab in labels}
    key = s.casefold().replace(" ", "_").replace("-", "_")
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


def _find_text(tokens: Sequence[str], text: str, norm=_norm_text) -> list[tuple[int, int]]:
    target = norm(text)
    hits = []
    for i in range(len(tokens)):
        acc = ""
        for j in range(i, len(tokens)):
            acc += norm(tokens[j])
            if acc == target:
                hits.append((i, j))
            if len(acc) >= len(target):
                break
    return hits


def _parse_entities(ents: Any, tokens: Sequence[str], labels: Sequence[str],
                    label_map: Mapping[str, str] | None = None) -> SentenceParse:
    if not isinstance(ents, list):
        return SentenceParse(None, '"entities" is not a list')
    n, repairs, slots, errors, unknown = len(tokens), [], [], [], []
    for k, e in enumerate(ents):
        if not isinstance(e, dict):
            errors.append(f"entity {k} is not an object")
            continue
        raw_label = e.get("label", e.get("type"))
        lab, note = normalize_label(raw_label, labels, label_map=label_map)
        if lab is None:
            errors.append(f"entity {k} has an unusable label {e.get('label')!r}")
            continue
        if note:
            repairs.append(note)
        if lab is DROP:
            unknown.append(str(raw_label).strip())
        first, last = _as_int(e.get("first", e.get("start"))), _as_int(e.get("last", e.get("end")))
        text = e.get("text") if isinstance(e.get("text"), str) and e.get("text").strip() else None
        ok = first is not None and last is not None and 0 <= first <= last < n
        span = " ".join(tokens[first:last + 1]) if ok else ""
        if text is not None and ok and _norm_text(span) != _norm_text(text) \
                and fold(span) == fold(text):
            repairs.append(f"entity text {text!r} matches tokens {first}..{last} ({span!r}) "
                           "once accents and apostrophes are folded")
        elif text is not None and (not ok or _norm_text(span) != _norm_text(text)):
            hits = _find_text(tokens, text) or _find_text(tokens, text, fold)
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
        return SentenceParse(None, "; ".join(errors), repairs, unknown_labels=unknown)
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
    return SentenceParse(tags, None, repairs, slots, unknown)


def _norm_tag(raw: Any, labels: Sequence[str], prev: str,
              label_map: Mapping[str, str] | None = None):
    if isinstance(raw, str) and raw.strip().upper() in ("O", "0", "OUTSIDE"):
        return "O", None if raw == "O" else f"tag {raw!r} read as O"
    if not isinstance(raw, str):
        return None, None
    m = re.fullmatch(r"([BI])[-_](.+)", raw.strip(), re.I)
    lab, note = normalize_label(m.group(2) if m else raw, labels, strip_bio=False,
                                label_map=label_map)
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


def _parse_tags(items: Any, tokens: Sequence[str], labels: Sequence[str],
                label_map: Mapping[str, str] | None = None) -> SentenceParse:
    """The paper's [[token, tag], ...], plain tag lists, or [{"i": .., "tag": ..}]."""
    if not isinstance(items, list):
        return SentenceParse(None, "tag list is not a list")
    n, repairs, unknown = len(tokens), [], []
    raw_tags: list[Any] = [None] * n
    if items and all(isinstance(x, dict) and "i" in x for x in items):
        for x in items:
            i = _as_int(x["i"])
            if i is None or not 0 <= i < n:
                return SentenceParse(None, f"token index {x['i']!r} outside 0..{n - 1}")
            raw_tags[i] = x.get("tag")
    elif items and all(isinstance(x, (list, tuple)) and len(x) == 2 for x in items):
        echoed = [fold(str(x[0])) for x in items]
        sm = difflib.SequenceMatcher(a=[fold(t) for t in tokens], b=echoed, autojunk=False)
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
        tag, note = _norm_tag(r, labels, tags[-1] or "O" if tags else "O", label_map)
        if tag is None:
            return SentenceParse(None, f"token {i} has an unusable tag {r!r}", repairs)
        if note:
            repairs.append(note)
            if tag == "O" and isinstance(r, str) and r.strip().upper() not in ("O", "0", "OUTSIDE"):
                unknown.append(re.sub(r"^[BI][-_]", "", r.strip(), flags=re.I))
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
    return SentenceParse(fixed, None, repairs, unknown_labels=unknown)


_TAG_KEYS = ("output", "tags", "tokens", "labels")


def _sentence_obj(x: Any) -> bool:
    return isinstance(x, dict) and ("entities" in x or any(k in x for k in _TAG_KEYS))


def _ner_shaped(v: Any) -> bool:
    """What an NER answer looks like (as opposed to a draft fragment or an example entity)."""
    if isinstance(v, dict):
        return isinstance(v.get("sentences"), list) or _sentence_obj(v)
    return isinstance(v, list) and bool(v) and (all(_sentence_obj(x) for x in v)
                                                or all(isinstance(x, (list, str)) for x in v))


def _items(value: Any, sentences: dict[int, Sequence[str]]) -> tuple[dict[int, Any], list[str]]:
    """``{sid: sentence object}`` from a reply value: by ``id``, else by order when the count of
    id-less sentence objects is the batch's, else (one sentence) the value itself."""
    if isinstance(value, dict) and isinstance(value.get("sentences"), list):
        value = value["sentences"]
    elif isinstance(value, dict) and _sentence_obj(value):
        value = [value]
    items: dict[int, Any] = {}
    if isinstance(value, list) and value and all(isinstance(x, dict) and "id" in x for x in value):
        for x in value:
            sid = _as_int(x["id"])
            if sid in sentences and sid not in items:
                items[sid] = x
        return items, []
    if isinstance(value, list) and value and all(_sentence_obj(x) for x in value):
        if len(value) == len(sentences):
            note = ([f"{len(value)} sentence objects without ids matched by order"]
                    if len(value) > 1 else [])
            return dict(zip(sentences, value)), note
        return {}, []
    if len(sentences) == 1:  # a single sentence answered as a bare tag list
        return {next(iter(sentences)): {"output": value}}, []
    return items, []


def _parse_one(x: Any, tokens: Sequence[str], labels: Sequence[str],
               label_map: Mapping[str, str] | None) -> SentenceParse:
    if "entities" in x:
        return _parse_entities(x["entities"], tokens, labels, label_map)
    key = next((k for k in _TAG_KEYS if k in x), None)
    return (_parse_tags(x[key], tokens, labels, label_map) if key else
            SentenceParse(None, 'reply has neither "entities" nor a tag list'))


def parse_ner(raw: str | None, sentences: dict[int, Sequence[str]], labels: Sequence[str], *,
              label_map: Mapping[str, str] | None = None, reasoning: str | None = None,
              salvage: bool = False) -> dict[int, SentenceParse]:
    """Parse one reply for the sentences ``{id: tokens}`` it answers; one result per id.

    ``salvage``: the reply was cut (``finish_reason=length``); every complete sentence object
    with an id in it counts, the others are "missing" (the caller re-asks only those).
    """
    value, notes, err = extract_json(raw, shape=_ner_shaped, reasoning=reasoning)
    items, order_note = ({}, []) if err else _items(value, sentences)
    if salvage:  # the reply was cut: its complete sentence objects, wherever the cut left them
        found = {}
        for v, _ in json_values(strip_reasoning(raw or "")[0]):
            sid = _as_int(v.get("id")) if isinstance(v, dict) and _sentence_obj(v) else None
            if sid in sentences and sid not in items and sid not in found:
                found[sid] = v
        items.update(found)
        if items:
            notes = [n for n in notes if "prose" not in n and "answer-shaped" not in n]
            notes, err = notes + ["complete sentence object salvaged from a truncated reply"], None
    if err:
        return {sid: SentenceParse(None, err) for sid in sentences}
    out = {}
    for sid, tokens in sentences.items():
        x = items.get(sid)
        if x is None:
            out[sid] = SentenceParse(None, f"sentence {sid} is missing from the reply")
            continue
        res = _parse_one(x, tokens, labels, label_map)
        res.repairs[:0] = notes + order_note
        out[sid] = res
    return out


def _choice_shaped(v: Any) -> bool:
    return (isinstance(v, dict) and ("label" in v or "labels" in v)) or (
        isinstance(v, list) and bool(v) and all(isinstance(x, str) for x in v))


def parse_choices(raw: str | None, choices: Sequence[str], multi_label: bool, *,
                  reasoning: str | None = None) -> ChoiceParse:
    value, notes, err = extract_json(raw, shape=_choice_shaped, reasoning=reasoning)
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
