"""Deterministic model behaviours for the fake OpenAI server, chosen by the request's model name.

A model name is one or more personas joined by ``+``, e.g. ``perfect``, ``noisy-0.14``,
``slow-200+noisy-0.1``, ``ratelimit-2``, ``slow-10+systematic-0.5``. Every random choice is
seeded by (sentence, seed) - for ``systematic-*`` mostly by the entity's surface form - so a given
request always gets the same answer and sample k differs from sample k+1.

Answer-shaping personas (the NER gold tags are corrupted, then serialised):
  perfect        the gold answer in the requested format
  noisy-<p>      each token's tag replaced by another one with probability p (i.i.d.: voting
                 over samples removes most of it)
  systematic-<F> errors as real LLMs make them (devtools/fakellm/systematic.py: missed entities,
                 ORG/LOC confusions, boundary slips, spurious capitalised words), keyed by the
                 surface form so they repeat in every sentence and sample (~10 % sample-dependent); the
                 intensity is calibrated by the server so that sample 0's strict entity F1 on
                 the gold it holds is F, e.g. ``systematic-0.509`` (GPT-4o zero-shot hau)
  systematic-acc-<A> the same, calibrated to entity-token accuracy A (gold non-O tokens with
                 exactly the gold tag; the paper's metric), e.g. ``systematic-acc-0.90``
  inconsistent   seed % 3: 0 gold, 1 the last entity missing, 2 the first entity relabelled
  wrong-length   the paper's ``{"output": [[token, tag], ...]}`` with one token skipped
                 (a re-ask, which carries the parser's error, gets the gold answer)
  unknown-tags   PERSON / location / B-ORG / date instead of the enum, plus a B-EVENT entity
  prose          JSON inside prose and a code fence
  garbage        no JSON at all, ever
Habits of real models (issue 20), each applied to the gold answer:
  reasoning      DeepSeek-R1 / Qwen3 without a reasoning parser: ``<think>`` with a wrong draft
                 JSON (last entity dropped, first relabelled), then the answer; as Qwen3's chat
                 template, none when the request has ``chat_template_kwargs.enable_thinking``
                 false (``LLM_EXTRA_BODY``)
  reasoning-field the draft in ``message.reasoning_content`` (vLLM/DeepSeek API style), the
                 answer in ``content``; always thinks (deepseek-reasoner has no off switch)
  python         the answer as a Python literal: single quotes, trailing commas, True/None
  gpe            OntoNotes/spaCy labels: LOC entities labelled GPE (every other one FAC),
                 PER as PERSON
  folded         echoed entity text with accents stripped and ' written as U+02BC
  no-id          sentence objects without "id" (count and order right)
  refusal        ``message.refusal`` set, no content (OpenAI structured-output refusals)
  content-filter finish_reason "content_filter", no content
  no-usage       replies carry no ``usage`` (proxies, older local servers)
  html           HTTP 200 with an HTML page (a base URL pointing at a web UI)
  badkey         HTTP 401 "Incorrect API key provided"
  llamacpp       llama-cpp-python's ``llama_cpp.server``: ``response_format`` must be ``text``
                 or ``json_object`` (optional ``schema``), anything else is an HTTP 500 carrying
                 the pydantic validation error; ``n`` ignored; ONE request generated at a time
                 (a lock, as the server's ``llama_outer_lock``), ``slow-<ms>`` each
Transport personas:
  truncated      the first reply to each request is cut at 60 % with finish_reason "length"
  slow-<ms>      sleeps that long before answering
  ratelimit[-k]  the first k (1) calls of each request get 429 with ``Retry-After: 1``
  error500       always HTTP 500
  timeout        hangs (30 s) past any sane client timeout
  no-logprobs    HTTP 400 when logprobs are requested;  no-schema: 400 for json_schema
  no-n           ignores ``n`` (one choice per call)
"""
from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence

KNOWN = {"perfect", "noisy", "inconsistent", "wrong-length", "unknown-tags", "prose", "garbage",
         "truncated", "slow", "ratelimit", "error500", "timeout", "no-logprobs", "no-schema",
         "no-n", "reasoning", "reasoning-field", "python", "gpe", "folded", "no-id", "refusal",
         "content-filter", "no-usage", "html", "badkey", "llamacpp", "systematic",
         "systematic-acc"}
_TARGETS = {"systematic", "systematic-acc"}  # calibrated: the argument is a target in (0, 1]
_MANGLE = {"PER": "PERSON", "LOC": "location", "ORG": "B-ORG", "DATE": "date"}


def parse_model(name: str) -> dict[str, float]:
    """``"slow-200+noisy-0.1"`` -> ``{"slow": 200.0, "noisy": 0.1}``; unknown parts -> ValueError."""
    out: dict[str, float] = {}
    for part in (name or "perfect").split("+"):
        part = part.strip().lower()
        if part in KNOWN:
            out[part] = 1.0
            continue
        base, _, arg = part.rpartition("-")
        if base in KNOWN:
            try:
                out[base] = float(arg)
                continue
            except ValueError:
                pass
        if part.startswith("gpt") or part.startswith("fake"):  # any real-looking name: perfect
            out["perfect"] = 1.0
            continue
        raise ValueError(f"The model `{name}` does not exist or you do not have access to it. "
                         f"(fake server personas: {sorted(KNOWN)})")
    targets = _TARGETS & out.keys()
    if len(targets) > 1 or any(not 0.0 < out[t] <= 1.0 for t in targets):
        raise ValueError(f"The model `{name}` does not exist: one of systematic-<F> or "
                         f"systematic-acc-<A>, with a target in (0, 1]")
    return out


def rng_for(*parts) -> random.Random:
    h = hashlib.sha256(repr(parts).encode("utf-8")).digest()
    return random.Random(int.from_bytes(h[:8], "big"))


def corrupt_tags(tokens: Sequence[str], gold: Sequence[str], labels: Sequence[str],
                 personas: dict[str, float], seed: int, profile=None) -> list[str]:
    """``profile``: the calibrated ``systematic.Profile`` the server found for the systematic
    personas (required with them; applied first, the other corruptions on top)."""
    tags = list(gold)
    if _TARGETS & personas.keys():
        if profile is None:
            raise ValueError("systematic personas need the server's calibrated profile")
        from devtools.fakellm.systematic import corrupt
        tags = corrupt(tokens, tags, labels, profile, seed)
    if "noisy" in personas:
        p = personas["noisy"]
        rng = rng_for("noisy", tuple(tokens), seed)
        scheme = ["O"] + [f"{b}-{lab}" for lab in labels for b in "BI"]
        for i, t in enumerate(tags):
            if rng.random() < p:
                tags[i] = rng.choice([s for s in scheme if s != t])
    if "inconsistent" in personas:
        ents = [i for i, t in enumerate(tags) if t.startswith("B-")]
        if seed % 3 == 1 and ents:
            _drop_entity(tags, ents[-1])
        elif seed % 3 == 2 and ents:
            j = ents[0]
            other = [lab for lab in labels if lab != tags[j][2:]] or [tags[j][2:]]
            _relabel_entity(tags, j, other[seed % len(other)])
    return tags


def _drop_entity(tags: list[str], j: int) -> None:
    """The entity starting at ``j`` becomes O (in place)."""
    tags[j] = "O"
    k = j + 1
    while k < len(tags) and tags[k].startswith("I-"):
        tags[k] = "O"
        k += 1


def _relabel_entity(tags: list[str], j: int, label: str) -> None:
    """The entity starting at ``j`` gets type ``label`` (in place)."""
    k = j
    while k < len(tags) and (k == j or tags[k].startswith("I-")):
        tags[k] = tags[k][:2] + label
        k += 1


def fallback_tags(tokens: Sequence[str], labels: Sequence[str]) -> list[str]:
    """Unknown sentences: capitalised words after the first token form entities of labels[0]."""
    tags, lab = [], (labels[0] if labels else None)
    for i, t in enumerate(tokens):
        if lab and i > 0 and t[:1].isupper():
            tags.append(f"I-{lab}" if tags and tags[-1] != "O" else f"B-{lab}")
        else:
            tags.append("O")
    return tags


def mangle_label(label: str) -> str:
    return _MANGLE.get(label, label.lower())


def pick_choice(text: str, choices: Sequence[str], gold: Sequence[str] | None,
                personas: dict[str, float], seed: int) -> list[str]:
    picked = list(gold) if gold else [choices[int(hashlib.sha256(text.encode()).hexdigest(), 16)
                                             % len(choices)]]
    if "noisy" in personas and rng_for("cls", text, seed).random() < personas["noisy"]:
        others = [c for c in choices if c not in picked] or list(choices)
        picked = [others[seed % len(others)]]
    if "inconsistent" in personas and seed % 3 == 1:
        others = [c for c in choices if c not in picked] or list(choices)
        picked = [others[0]]
    return picked


def draft_of(tokens: Sequence[str], tags: Sequence[str], labels: Sequence[str]) -> list[str]:
    """A reasoning model's first guess: the last entity forgotten, the first one relabelled."""
    out = list(tags)
    starts = [i for i, t in enumerate(out) if t.startswith("B-")]
    if starts:
        _drop_entity(out, starts[-1])
    if len(starts) > 1:
        j = starts[0]
        other = [lab for lab in labels if lab != out[j][2:]] or [out[j][2:]]
        _relabel_entity(out, j, other[0])
    return out


_FOLD_APOSTROPHES = str.maketrans({"'": "\u02bc", "\u2019": "\u02bc", "\u2018": "\u02bc"})


def fold_text(text: str) -> str:
    """What a model that normalises its output echoes: no accents, another apostrophe."""
    import unicodedata
    s = unicodedata.normalize("NFKD", text)
    return "".join(c for c in s if not unicodedata.combining(c)).translate(_FOLD_APOSTROPHES)


def python_literal(value) -> str:
    """``repr`` of the answer with a trailing comma in every list and object and a True flag."""
    if isinstance(value, dict):
        items = "".join(f"{python_literal(k)}: {python_literal(v)}, " for k, v in value.items())
        return "{" + items + "'confident': True, }" if "label" in value else "{" + items + "}"
    if isinstance(value, list):
        return "[" + "".join(f"{python_literal(v)}, " for v in value) + "]"
    return repr(value)
