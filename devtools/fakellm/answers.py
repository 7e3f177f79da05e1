"""What the fake model answers: gold lookup, persona corruption, serialisation, logprobs."""
from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence

from model.llm.prompts import entities_from_tags
from devtools.fakellm import personas as P

HIGH, LOW = math.log(0.9995), math.log(0.55)


HABITS = {"reasoning", "reasoning-field", "python", "gpe", "folded", "no-id"}
_ONTONOTES = {"LOC": ("GPE", "FAC"), "PER": ("PERSON", "PERSON")}


def habit_content(sents, gold, labels, personas, seed, profile=None) -> tuple[str, str | None]:
    """``(content, reasoning_content)`` for the personas of real models' habits (``HABITS``)."""
    answer, draft = [], []
    for sid, toks in sents:
        tags = P.corrupt_tags(toks, gold.tags_for(toks, labels), labels, personas, seed, profile)
        ents = entities_from_tags(toks, tags)
        for k, e in enumerate(ents):
            if "gpe" in personas and e["label"] in _ONTONOTES:
                e["label"] = _ONTONOTES[e["label"]][k % 2]
            if "folded" in personas:
                e["text"] = P.fold_text(e["text"])
        obj = {"entities": ents} if "no-id" in personas else {"id": sid, "entities": ents}
        answer.append(obj)
        draft.append({"id": sid, "entities": entities_from_tags(
            toks, P.draft_of(toks, tags, labels))})
    value = {"sentences": answer}
    content = (P.python_literal(value) if "python" in personas
               else json.dumps(value, ensure_ascii=False))
    draft_json = json.dumps({"sentences": draft}, ensure_ascii=False)
    thinking = (f"Okay, I need to find the named entities. Let me go token by token.\n"
                f"First attempt:\n{draft_json}\nWait, let me double-check the last sentence "
                f"and the entity types again. I missed one and mislabelled another. Final answer "
                f"below.")
    if "reasoning-field" in personas:
        return content, thinking
    if "reasoning" in personas:
        return f"<think>\n{thinking}\n</think>\n\n{content}", None
    return content, None


def ner_content(sents, gold, labels, personas, seed, reask, profile=None
                ) -> tuple[str, list[tuple]]:
    """The reply text and the char ranges to mark uncertain (for logprobs)."""
    low: list[tuple[int, int]] = []
    if "wrong-length" in personas and not reask:
        items = []
        for sid, toks in sents:
            tags = gold.tags_for(toks, labels)
            drop = P.rng_for("drop", tuple(toks), seed).randrange(len(toks)) if toks else 0
            items.append({"id": sid, "output": [[t, g] for i, (t, g) in enumerate(zip(toks, tags))
                                                if i != drop]})
        return json.dumps({"sentences": items}, ensure_ascii=False), low
    out = '{"sentences": ['
    for si, (sid, toks) in enumerate(sents):
        gtags = gold.tags_for(toks, labels)
        tags = P.corrupt_tags(toks, gtags, labels, personas, seed, profile)
        gold_ents = {(e["first"], e["last"], e["label"])
                     for e in entities_from_tags(toks, gtags)}
        ents = entities_from_tags(toks, tags)
        if "unknown-tags" in personas:
            for e in ents:
                e["label"] = P.mangle_label(e["label"])
            free = [i for i, t in enumerate(tags) if t == "O" and toks[i][:1].isalpha()]
            if free:
                ents.append({"first": free[0], "last": free[0], "label": "EVENT",
                             "text": toks[free[0]]})
        out += (", " if si else "") + f'{{"id": {sid}, "entities": ['
        if len(ents) < len(gold_ents):
            low.append((len(out), len(out) + 1))  # the decision to stop early
        for ei, e in enumerate(ents):
            obj = json.dumps(e, ensure_ascii=False)
            start = len(out) + (2 if ei else 0)
            out += (", " if ei else "") + obj
            if (e["first"], e["last"], e["label"]) not in gold_ents:
                at = obj.index('"label": "') + len('"label": "')
                low.append((start + at, start + at + len(e["label"])))
        out += "]}"
    return out + "]}", low


class GoldIndex:
    """All gold sentences as one string without spaces, so a prompt sentence is found even when
    it was tokenized differently from the gold file (``model.tokenize`` vs CoNLL) or is a chunk
    of a longer text spanning several gold sentences."""

    def __init__(self, gold: dict) -> None:
        self.sentences = [(list(toks), list(tags)) for toks, tags in gold.items()]
        parts, self.owner, self.starts, self.tags = [], [], [], []
        pos = 0
        for toks, tags in gold.items():
            for t, g in zip(toks, tags):
                self.starts.append(pos)
                self.owner.extend([len(self.tags)] * len(t))
                self.tags.append(g)
                parts.append(t)
                pos += len(t)
        self.corpus = "".join(parts)

    def tags_for(self, toks: Sequence[str], labels: Sequence[str]) -> list[str]:
        concat = "".join(toks)
        at = self.corpus.find(concat) if concat else -1
        if at < 0:
            return P.fallback_tags(toks, labels)
        tags, pos = [], at
        for t in toks:
            k = self.owner[pos]
            g = self.tags[k]
            if g != "O" and pos > self.starts[k]:  # starts inside a gold token
                g = "I-" + g[2:]
            tags.append(g if g == "O" or g[2:] in labels else "O")
            pos += len(t)
        for i, g in enumerate(tags):  # an entity cut at the start must not begin with I-
            if g.startswith("I-") and (i == 0 or tags[i - 1][2:] != g[2:]):
                tags[i] = "B-" + g[2:]
        return tags


def logprobs(content: str, low: Sequence[tuple[int, int]]) -> dict:
    items, pos = [], 0
    for tok in re.findall(r"\w+|\s+|[^\w\s]", content):
        lp = LOW if any(a <= pos < b for a, b in low) and tok.strip() else HIGH
        items.append({"token": tok, "logprob": lp, "bytes": list(tok.encode("utf-8")),
                      "top_logprobs": []})
        pos += len(tok)
    return {"content": items}
