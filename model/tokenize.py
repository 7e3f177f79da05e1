"""Offset-preserving tokenization for any Unicode text.

Why not ``str.split`` or ``\\w+``: Yorùbá is often written with combining tone marks (category Mn),
which ``\\w`` does not match, so a word like "Abíọ́lá" in NFD form would be cut into pieces; Hausa
writes the hooked y as an apostrophe ("'yan", "Jami'ar") that belongs to the word; and punctuation
is often glued to words ("Kano,"). The rule here: a word is a maximal run of letters, digits and
combining marks, plus apostrophes/hyphens *inside* such a run; every other non-space character is
a token of its own. Offsets always index the original string.
"""
from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from functools import lru_cache

from model.types import Span, Token

_JOINERS = frozenset("'‘’ʼʻ`-‐")


@lru_cache(maxsize=65_536)  # called per character of every text; a script has few distinct ones
def _is_word_char(ch: str) -> bool:
    cat = unicodedata.category(ch)
    return cat[0] in ("L", "N", "M") or ch == "_"


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens with exact offsets (``text[t.start:t.end] == t.text``)."""
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        if _is_word_char(ch) or (ch in _JOINERS and i + 1 < n and _is_word_char(text[i + 1])
                                 and ch != "-"):
            # a word; a leading apostrophe is allowed (Hausa "'yan"), a leading hyphen is not
            j = i + 1
            while j < n:
                c = text[j]
                if _is_word_char(c):
                    j += 1
                elif c in _JOINERS and j + 1 < n and _is_word_char(text[j + 1]):
                    j += 1
                else:
                    break
            tokens.append(Token(text[i:j], i, j))
            i = j
        else:
            tokens.append(Token(ch, i, i + 1))
            i += 1
    return tokens


def join_tokens(words: Sequence[str]) -> tuple[str, list[Token]]:
    """Build a text from pre-tokenized words (CoNLL data) joined by single spaces, with offsets."""
    parts: list[str] = []
    toks: list[Token] = []
    pos = 0
    for w in words:
        if parts:
            parts.append(" ")
            pos += 1
        toks.append(Token(w, pos, pos + len(w)))
        parts.append(w)
        pos += len(w)
    return "".join(parts), toks


def spans_to_bio(tokens: Sequence[Token], spans: Sequence[Span]) -> list[str]:
    """BIO tags for ``tokens`` from character spans.

    A token belongs to a span when it overlaps it; a span boundary falling inside a token is
    widened to the whole token (Label Studio users often select "Kano" out of "Kano,"-like
    glued strings, or a word without its tone mark). Overlapping spans: the earlier one wins.
    """
    tags = ["O"] * len(tokens)
    for span in sorted(spans, key=lambda s: (s.start, -(s.end - s.start))):
        inside = [k for k, t in enumerate(tokens) if t.start < span.end and t.end > span.start]
        if not inside or any(tags[k] != "O" for k in inside):
            continue
        tags[inside[0]] = f"B-{span.label}"
        for k in inside[1:]:
            tags[k] = f"I-{span.label}"
    return tags


def bio_to_spans(tokens: Sequence[Token], tags: Sequence[str],
                 scores: Sequence[float] | None = None) -> list[Span]:
    """Character spans from BIO tags (an I- without a matching B- starts a new entity, as seqeval
    does in its default mode). ``scores`` (one per entity, in order) become ``Span.score``."""
    spans: list[Span] = []
    cur_label, cur_start, cur_end = None, 0, 0
    for tok, tag in zip(tokens, tags):
        prefix, _, label = tag.partition("-")
        if prefix == "B" or (prefix == "I" and label != cur_label):
            if cur_label is not None:
                spans.append(Span(cur_start, cur_end, cur_label))
            cur_label, cur_start, cur_end = label, tok.start, tok.end
        elif prefix == "I":
            cur_end = tok.end
        else:
            if cur_label is not None:
                spans.append(Span(cur_start, cur_end, cur_label))
            cur_label = None
    if cur_label is not None:
        spans.append(Span(cur_start, cur_end, cur_label))
    if scores is not None:
        spans = [Span(s.start, s.end, s.label, float(sc)) for s, sc in zip(spans, scores)]
    return spans
