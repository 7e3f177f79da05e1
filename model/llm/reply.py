"""The reply normaliser: the one place that turns a model's raw reply text into a JSON value.

Real models and serving stacks wrap the answer in habits of their own; each rule below exists
because a model sends it (tests/model/test_llm_reply.py has one recorded-style reply per rule):

- Reasoning blocks: ``<think>...</think>`` (DeepSeek-R1, Qwen3 served without a reasoning
  parser), ``<thinking>``/``<reasoning>`` and a lone ``</think>`` (the template opened the block
  in the prompt) are removed before anything is looked for: they often hold a *draft* answer.
  A server's ``reasoning_content`` field is kept apart by the client; it is only used when the
  content itself holds no answer (a reasoning parser that swallowed everything).
- Several JSON values: the **last** complete, answer-shaped value wins (a model that drafts and
  then corrects itself ends with the correction); ``shape`` says what answer-shaped means.
- Code fences with any language tag (```` ```json ````, ```` ```python ````, ```` ``` ````).
- Python literals (single quotes, trailing commas, ``True``/``None``): ``ast.literal_eval`` of
  the extracted object (never ``eval``); JSON's ``true``/``false``/``null`` inside such an
  object are read as Python's (token-wise, never inside strings).
"""
from __future__ import annotations

import ast
import io
import json
import re
import tokenize
from collections.abc import Callable
from typing import Any

_REASONING = re.compile(r"<(think|thinking|reasoning|reflection)>(.*?)</\1>", re.S | re.I)
_OPEN_ONLY = re.compile(r"<(think|thinking|reasoning)>", re.I)
_CLOSE_ONLY = re.compile(r"</(think|thinking|reasoning)>", re.I)
_FENCE = re.compile(r"```[A-Za-z0-9_+-]*[ \t]*\n?(.*?)```", re.S)
_PY_WORDS = {"true": "True", "false": "False", "null": "None"}


def strip_reasoning(raw: str) -> tuple[str, list[str], list[str]]:
    """``(answer text, reasoning texts, notes)``: reasoning blocks cut out of ``raw``."""
    notes: list[str] = []
    reasoning = [m.group(2) for m in _REASONING.finditer(raw)]
    text = _REASONING.sub(" ", raw)
    close = list(_CLOSE_ONLY.finditer(text))
    if close:  # "</think>" without its opening tag: everything before it was reasoning
        reasoning.append(text[:close[-1].start()])
        text = text[close[-1].end():]
    opened = _OPEN_ONLY.search(text)
    if opened:  # an unclosed block (cut by max_tokens): the rest is reasoning, not an answer
        reasoning.append(text[opened.end():])
        text = text[:opened.start()]
    if reasoning:
        notes.append("reasoning block removed before parsing")
    return text, reasoning, notes


def _python_literal(src: str) -> Any:
    """``ast.literal_eval`` with JSON's true/false/null read as Python names; raises ValueError."""
    try:
        toks = list(tokenize.generate_tokens(io.StringIO(src).readline))
        src = tokenize.untokenize(
            (t.type, _PY_WORDS.get(t.string, t.string)) if t.type == tokenize.NAME else
            (t.type, t.string) for t in toks)
        return ast.literal_eval(src.strip())
    except (SyntaxError, ValueError, TypeError, MemoryError, RecursionError,
            tokenize.TokenError, IndentationError) as exc:
        raise ValueError(str(exc)) from None


def _balanced_end(text: str, start: int, limit: int = 20_000) -> int | None:
    """Index after the bracket closing ``text[start]``, skipping '...' and "..." strings; None
    when it does not close within ``limit`` characters."""
    depth, quote, i = 0, None, start
    stop = min(len(text), start + limit)
    while i < stop:
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return None


MAX_DEPTH = 64        # answers nest 4-5 deep; deeper "JSON" is not one (and recursion is slow)
MAX_FAILED_TRIES = 200  # bounds the work on long garbage: at most this many failed parses


def _brackets(text: str) -> tuple[dict[int, int], dict[int, int]]:
    """One pass over ``text`` (double-quoted strings skipped): ``{open: close}`` for balanced
    brackets and ``{open: nesting depth below it}``."""
    match: dict[int, int] = {}
    below: dict[int, int] = {}
    stack: list[int] = []
    in_str = esc = False
    for i, ch in enumerate(text):
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "{[":
            stack.append(i)
            below[i] = 1
        elif ch in "}]" and stack:
            j = stack.pop()
            match[j] = i + 1
            if stack:
                below[stack[-1]] = max(below[stack[-1]], below[j] + 1)
    return match, below


def json_values(text: str) -> list[tuple[Any, bool]]:
    """Every top-level JSON (or Python-literal) object or list in ``text``, in order, as
    ``(value, was_python_literal)``. A value nested in another is not listed apart. Linear in
    the text but for at most ``MAX_FAILED_TRIES`` failed parses."""
    match, below = _brackets(text)
    out: list[tuple[Any, bool]] = []
    failed = 0
    i = 0
    while i < len(text) and failed < MAX_FAILED_TRIES:
        if text[i] not in "{[" or below.get(i, 0) > MAX_DEPTH:
            i += 1
            continue
        end = match.get(i)
        if end is not None:
            try:
                out.append((json.loads(text[i:end]), False))
                i = end
                continue
            except (ValueError, RecursionError):  # not JSON: maybe a Python literal
                failed += 1
        quoted = text.find("'", i, i + 2000) >= 0
        end = _balanced_end(text, i) if quoted or end is not None else None
        if end is not None:
            try:
                value = _python_literal(text[i:end])
            except ValueError:
                failed += 1
            else:
                if isinstance(value, (dict, list, tuple)):
                    out.append((_jsonable(value), True))
                    i = end
                    continue
        elif quoted:
            failed += 10  # a full scan that found no close: costlier than a failed parse
        i += 1
    return out


def _jsonable(v: Any) -> Any:
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    return v


def _any_container(v: Any) -> bool:
    return isinstance(v, (dict, list)) and bool(v)


def _pick(text: str, shape: Callable[[Any], bool]) -> tuple[Any, list[str]] | None:
    """The last answer-shaped value of ``text``: the whole text, else the fences, else a scan."""
    stripped = text.strip()
    try:
        value = json.loads(stripped)
    except (ValueError, RecursionError):  # deep nesting: not an answer
        pass
    else:
        if shape(value):
            return value, []
    for body in reversed([m.group(1) for m in _FENCE.finditer(text)]):
        good = [(v, py) for v, py in json_values(body) if shape(v)]
        if good:
            return good[-1][0], ["JSON taken out of a code fence"] + (
                ["Python literal read as JSON"] if good[-1][1] else [])
    vals = json_values(text)
    good = [(v, py) for v, py in vals if shape(v)]
    if not good:
        return None
    v, py = good[-1]
    notes = []
    if stripped[:1] not in "{[" or len(vals) > 1:
        notes.append("JSON taken out of surrounding prose")
    if len(good) > 1:
        notes.append(f"the last of {len(good)} answer-shaped JSON values taken (drafts before it)")
    if py:
        notes.append("Python literal read as JSON")
    return v, notes


def _fallback(text: str) -> tuple[Any, list[str]] | None:
    """No answer-shaped value: the whole reply's JSON, else its last container, so the parser
    can say what is wrong with it (rather than "no JSON")."""
    try:
        return json.loads(text.strip()), []
    except (ValueError, RecursionError):  # deep nesting: not an answer
        pass
    vals = [v for v, _ in json_values(text) if _any_container(v)]
    return (vals[-1], ["JSON taken out of surrounding prose"]) if vals else None


def extract_json(raw: str | None, *, shape: Callable[[Any], bool] | None = None,
                 reasoning: str | None = None) -> tuple[Any, list[str], str | None]:
    """``(value, notes, error)``: the answer in a reply, after the rules of this module.

    ``shape(value)`` tells an answer from other JSON (default: any non-empty object or list);
    ``reasoning`` is a server's separate ``reasoning_content``, used only when the content holds
    no answer-shaped value.
    """
    shape = shape or _any_container
    if (raw is None or not raw.strip()) and not (reasoning and reasoning.strip()):
        return None, [], "empty reply"
    text, blocks, notes = strip_reasoning(raw or "")
    got = _pick(text, shape)
    if got is not None:
        return got[0], notes + got[1], None
    for source in ([reasoning] if reasoning else []) + blocks[::-1]:
        got = _pick(source, shape)
        if got is not None:
            return got[0], notes + got[1] + ["answer taken from the reasoning (none after it)"], None
    got = _fallback(text)
    if got is not None:
        return got[0], notes + got[1], None
    if (blocks or reasoning) and not text.strip():
        return None, notes, "reply holds only reasoning, no answer"
    return None, notes, "no JSON object found in the reply"
