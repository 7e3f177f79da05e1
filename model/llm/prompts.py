"""Prompt builders for NER and classification; the template texts are versioned constants.

Everything sits in one system and one user message: several local chat templates (Mistral,
Llama-2) refuse two user messages in a row, and few-shot examples as alternating turns would
repeat the instructions. The input block comes last, behind a fixed marker, so a re-ask note
(placed before it) and the examples (marked differently) never mix with the sentences.

NER output format (``NER_V1``)::

    {"sentences": [{"id": 0, "entities": [{"first": 10, "last": 11, "label": "LOC",
                                          "text": "jihar Benue"}]}]}

Why entities as inclusive token-index ranges rather than one tag per token (the paper's
``[[token, tag], ...]``): (1) a reply can no longer have the "wrong length", the failure that
cost open models 6-38 of 50 sentences in the paper; (2) it is ~5-10x fewer completion tokens
(a Hausa sentence has ~25 tokens but ~2 entities), and completion tokens cost 3x prompt tokens;
(3) the label is a schema enum of entity types, so BIO legality (I- after O) cannot be broken;
(4) the echoed ``text`` lets the parser detect and repair an off-by-one index (the typical
counting slip) by relocating the text, instead of trusting indices blindly. The parser still
accepts the paper's pair format and plain tag lists, since JSON-mode models sometimes fall back
to them.
"""
from __future__ import annotations

import json
from collections.abc import Sequence

NER_VERSION = "ner.v1"
CLS_VERSION = "cls.v1"
SENTENCES_MARKER = "SENTENCES:"
TEXT_MARKER = "TEXT:"
REASK_MARKER = "NOTE: a previous answer to this request was rejected"
MAX_TEXT_CHARS = 4000       # classification input; news bodies beyond this add cost, not signal
MAX_EXAMPLE_CHARS = 600

NER_SYSTEM_V1 = "You are a named-entity labelling expert in {language}."

NER_USER_V1 = """Label the named entities in each {language} sentence below.
Allowed BIO tags: {bio_tags}. An entity is a B- token followed by I- tokens of the same type;
every other token is O. Entity types: {types}.
Each sentence is one JSON object with an "id" and its tokens as [index, token] pairs.
Answer with JSON only, no prose, exactly in this form:
{{"sentences": [{{"id": <sentence id>, "entities": [{{"first": <index of the entity's first token>, "last": <index of its last token>, "label": <entity type>, "text": <the entity's tokens joined by single spaces>}}]}}]}}
Rules: one object per input sentence, same ids; "entities" is [] when there is none; use only the
entity types listed; copy "text" exactly from the tokens.
{examples}{note}{marker}
{sentences}"""

CLS_SYSTEM_V1 = "You are a text classification expert in {language}."

CLS_USER_V1 = """Classify the {language} text below. Allowed labels: {choices}.
{instruction}
Answer with JSON only, no prose, exactly in this form: {form}
{examples}{note}{marker}
{text}"""


def bio_tags(labels: Sequence[str]) -> list[str]:
    return ["O"] + [f"{p}-{lab}" for lab in labels for p in ("B", "I")]


def sentence_line(sid: int, tokens: Sequence[str]) -> str:
    return json.dumps({"id": sid, "tokens": [[i, t] for i, t in enumerate(tokens)]},
                      ensure_ascii=False)


def entities_from_tags(tokens: Sequence[str], tags: Sequence[str]) -> list[dict]:
    """BIO tags -> the NER_V1 entity objects (an I- without its B- starts an entity)."""
    ents: list[dict] = []
    for i, tag in enumerate(tags):
        prefix, _, lab = tag.partition("-")
        if prefix == "B" or (prefix == "I" and not (ents and ents[-1]["last"] == i - 1
                                                    and ents[-1]["label"] == lab)):
            ents.append({"first": i, "last": i, "label": lab})
        elif prefix == "I":
            ents[-1]["last"] = i
    for e in ents:
        e["text"] = " ".join(tokens[e["first"]:e["last"] + 1])
    return ents


def ner_answer(items: Sequence[tuple[int, Sequence[str], Sequence[str]]]) -> str:
    """The gold-standard reply for (id, tokens, tags) items: used for few-shot examples."""
    return json.dumps({"sentences": [{"id": sid, "entities": entities_from_tags(toks, tags)}
                                     for sid, toks, tags in items]}, ensure_ascii=False)


def _note(errors: Sequence[str]) -> str:
    if not errors:
        return ""
    return f"{REASK_MARKER}: {'; '.join(errors)[:800]}. Fix this and answer again.\n"


def ner_messages(sentences: Sequence[tuple[int, Sequence[str]]], labels: Sequence[str],
                 language: str, examples: Sequence[tuple[Sequence[str], Sequence[str]]] = (),
                 errors: Sequence[str] = ()) -> list[dict]:
    ex = ""
    for k, (toks, tags) in enumerate(examples):
        ex += (f"EXAMPLE INPUT {k + 1}:\n{sentence_line(0, toks)}\nEXAMPLE OUTPUT {k + 1}:\n"
               f"{ner_answer([(0, toks, tags)])}\n")
    user = NER_USER_V1.format(language=language, bio_tags=", ".join(bio_tags(labels)),
                              types=", ".join(labels), examples=ex, note=_note(errors),
                              marker=SENTENCES_MARKER,
                              sentences="\n".join(sentence_line(s, t) for s, t in sentences))
    return [{"role": "system", "content": NER_SYSTEM_V1.format(language=language)},
            {"role": "user", "content": user}]


def ner_schema(labels: Sequence[str]) -> dict:
    entity = {"type": "object", "additionalProperties": False,
              "required": ["first", "last", "label", "text"],
              "properties": {"first": {"type": "integer"}, "last": {"type": "integer"},
                             "label": {"type": "string", "enum": list(labels)},
                             "text": {"type": "string"}}}
    sent = {"type": "object", "additionalProperties": False, "required": ["id", "entities"],
            "properties": {"id": {"type": "integer"},
                           "entities": {"type": "array", "items": entity}}}
    return {"name": "ner_entities", "strict": True,
            "schema": {"type": "object", "additionalProperties": False, "required": ["sentences"],
                       "properties": {"sentences": {"type": "array", "items": sent}}}}


def cls_answer(choices: Sequence[str], multi_label: bool) -> str:
    return json.dumps({"labels": list(choices)} if multi_label else {"label": choices[0]},
                      ensure_ascii=False)


def cls_messages(text: str, choices: Sequence[str], multi_label: bool, language: str,
                 examples: Sequence[tuple[str, Sequence[str]]] = (),
                 errors: Sequence[str] = ()) -> list[dict]:
    ex = "".join(f"EXAMPLE TEXT {k + 1}:\n{t[:MAX_EXAMPLE_CHARS]}\nEXAMPLE OUTPUT {k + 1}:\n"
                 f"{cls_answer(c, multi_label)}\n" for k, (t, c) in enumerate(examples) if c)
    if multi_label:
        instruction, form = ("Choose every label that applies (at least one).",
                             '{"labels": [<label>, ...]}')
    else:
        instruction, form = "Choose exactly one label.", '{"label": <label>}'
    user = CLS_USER_V1.format(language=language, choices=json.dumps(list(choices),
                                                                    ensure_ascii=False),
                              instruction=instruction, form=form, examples=ex,
                              note=_note(errors), marker=TEXT_MARKER,
                              text=text[:MAX_TEXT_CHARS])
    return [{"role": "system", "content": CLS_SYSTEM_V1.format(language=language)},
            {"role": "user", "content": user}]


def cls_schema(choices: Sequence[str], multi_label: bool) -> dict:
    enum = {"type": "string", "enum": list(choices)}
    if multi_label:
        props, req = {"labels": {"type": "array", "items": enum}}, ["labels"]
    else:
        props, req = {"label": enum}, ["label"]
    return {"name": "text_class", "strict": True,
            "schema": {"type": "object", "additionalProperties": False, "required": req,
                       "properties": props}}
