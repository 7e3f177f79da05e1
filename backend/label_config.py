"""Label Studio label config XML -> ``model.spec.TaskSpec``, validated.

The XML is first parsed with ``defusedxml`` (rejects DTDs, entity expansion and external entities),
then bounded in size, depth and label count, and only then handed to label-studio-sdk's
``LabelInterface``, which is what Label Studio users' configs are written for. Every failure is a
``BadRequest`` naming the problem, so the user sees why their project is not supported.
"""
from __future__ import annotations

import functools
import xml.etree.ElementTree as ET

import defusedxml.ElementTree as DET
from defusedxml import DefusedXmlException

from backend.errors import BadRequest
from model.spec import ChoicesControl, NERControl, TaskSpec

MAX_CONFIG_CHARS = 1_000_000
MAX_DEPTH = 30
MAX_LABELS = 1_000


def _depth(el: ET.Element, limit: int) -> int:
    stack = [(el, 1)]
    deepest = 1
    while stack:
        node, d = stack.pop()
        deepest = max(deepest, d)
        if deepest > limit:
            return deepest
        stack.extend((c, d + 1) for c in node)
    return deepest


def _check_xml(xml: str) -> None:
    if not isinstance(xml, str) or not xml.strip():
        raise BadRequest("label_config is empty: expected Label Studio XML such as <View>...</View>")
    if len(xml) > MAX_CONFIG_CHARS:
        raise BadRequest(f"label_config is {len(xml)} characters; the limit is {MAX_CONFIG_CHARS}")
    try:
        root = DET.fromstring(xml, forbid_dtd=True)
    except DefusedXmlException as e:
        raise BadRequest(f"label_config rejected: DTDs and entities are not allowed ({type(e).__name__})")
    except ET.ParseError as e:
        raise BadRequest(f"label_config is not well-formed XML: {e}")
    if _depth(root, MAX_DEPTH) > MAX_DEPTH:
        raise BadRequest(f"label_config nests deeper than {MAX_DEPTH} levels")
    n_labels = sum(1 for el in root.iter() if el.tag in ("Label", "Choice"))
    if n_labels > MAX_LABELS:
        raise BadRequest(f"label_config has {n_labels} labels/choices; the limit is {MAX_LABELS}")


SUPPORTED = ("supports one <Labels> (NER) and/or one <Choices> (classification), each with one toName, "
             "both over the same <Text name=... value=\"$field\"/>")


def parse_label_config(xml: str) -> TaskSpec:
    """The one ``<Labels>`` and/or one ``<Choices>`` control of a config, over one ``<Text>``.

    Anything else that would be read wrongly is refused, naming what is supported: a second
    ``<Labels>`` or ``<Choices>`` (it used to be dropped without a word), controls over different
    ``<Text>`` objects (every path reads one text per task, so the classifier trained and predicted
    on the NER field), a control over a non-Text object or over several objects, per-region
    ``<Choices>`` and the other ``*Labels`` tags. Controls that make no regions to predict
    (``<TextArea>``, ``<Rating>`` ...) are left to the annotators."""
    if not isinstance(xml, str):  # JSON can carry any type here; the cache below needs a str
        raise BadRequest(f"label_config must be a string of Label Studio XML, got {type(xml).__name__}")
    return _parse_label_config(xml)


def _control(ctl, objects: dict, problems: list[str]):
    """A ``NERControl``/``ChoicesControl`` of one SDK control, or None with the reason appended."""
    targets = list(ctl.to_name or [])
    if not targets:
        problems.append(f"<{ctl.tag} name=\"{ctl.name}\"> has no toName")
        return None
    if len(targets) > 1:
        problems.append(f"<{ctl.tag} name=\"{ctl.name}\"> has toName=\"{','.join(targets)}\" (several objects)")
        return None
    obj = objects.get(targets[0])
    if obj is None:
        problems.append(f"<{ctl.tag} name=\"{ctl.name}\"> points to toName=\"{targets[0]}\", "
                        "which is not an object in the config")
        return None
    if obj.tag != "Text":
        problems.append(f"<{ctl.tag} name=\"{ctl.name}\"> labels a <{obj.tag}>; only <Text> is supported")
        return None
    value = (obj.value or "").lstrip("$")
    if not value:
        problems.append(f"<Text name=\"{obj.name}\"> has no value=\"$field\"")
        return None
    labels = tuple(dict.fromkeys(str(x) for x in (ctl.labels or [])))
    if not labels:
        problems.append(f"<{ctl.tag} name=\"{ctl.name}\"> has no labels")
        return None
    if ctl.tag == "Labels":
        return NERControl(ctl.name, obj.name, value, labels)
    multi = str(ctl.attr.get("choice", "single")).lower() == "multiple"
    return ChoicesControl(ctl.name, obj.name, value, labels, multi)


@functools.lru_cache(maxsize=256)
def _parse_label_config(xml: str) -> TaskSpec:
    _check_xml(xml)
    from label_studio_sdk.label_interface import LabelInterface  # heavy import, off the module path

    try:
        li = LabelInterface(xml)
    except Exception as e:  # the SDK raises assorted types for odd configs
        raise BadRequest(f"label_config could not be read: {e}") from None
    objects = {o.name: o for o in li.objects}
    problems: list[str] = []
    found: dict[str, list] = {"Labels": [], "Choices": []}
    for ctl in li.controls:
        if ctl.tag in found:
            if str(ctl.attr.get("perRegion", "")).lower() == "true":
                problems.append(f"<{ctl.tag} name=\"{ctl.name}\" perRegion=\"true\"> (per-region attributes)")
                continue
            c = _control(ctl, objects, problems)
            if c is not None:
                found[ctl.tag].append(c)
        elif ctl.tag.endswith("Labels"):  # <HyperTextLabels>, <RectangleLabels> ...: regions never predicted
            problems.append(f"<{ctl.tag} name=\"{ctl.name}\">")
    for tag, ctls in found.items():
        if len(ctls) > 1:
            names = ", ".join(f'"{c.from_name}"' for c in ctls)
            problems.append(f"{len(ctls)} <{tag}> controls ({names})")
    ner = found["Labels"][0] if found["Labels"] else None
    choices = found["Choices"][0] if found["Choices"] else None
    if ner and choices and ner.to_name != choices.to_name:
        problems.append(f"<Labels name=\"{ner.from_name}\"> labels <Text name=\"{ner.to_name}\"> but "
                        f"<Choices name=\"{choices.from_name}\"> labels <Text name=\"{choices.to_name}\">")
    if ner is None and choices is None and not problems:
        problems.append("no <Labels> or <Choices> control found")
    if problems:
        raise BadRequest(f"unsupported label_config: {'; '.join(problems)}. This backend {SUPPORTED}")
    return TaskSpec(ner=ner, choices=choices)
