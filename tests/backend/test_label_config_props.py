"""Property-based: over generated label configs, the backend either refuses the config saying
what it supports, or every region it predicts names an existing control of the right kind, that
control's own ``toName`` object, and text from that object's ``value`` field; no supported control
is dropped. The oracle below reads the XML itself (ElementTree), not through the code under test."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from model.types import Span

TEXTS = {"text": "Musa ya je Kano jiya", "body": "Aisha ta dawo Abuja da safe", "title": "Labari"}
LABELS = ["PER", "ORG", "LOC", "DATE"]
CHOICES = ["sports", "politics", "health"]


@st.composite
def configs(draw) -> str:
    n_text = draw(st.integers(1, 3))
    names = draw(st.lists(st.sampled_from(["text", "a", "b", "c"]), min_size=n_text, max_size=n_text, unique=True))
    objects = [(n, "Text", draw(st.sampled_from(["$text", "$body", "$title", ""]) if draw(st.booleans())
                               else st.sampled_from(["$text", "$body", "$title"])))
               for n in names]
    if draw(st.integers(0, 4)) == 0:
        objects.append(("img", "Image", "$image"))
    targets = [o[0] for o in objects] + ["nowhere", ",".join(names[:2])]
    controls = []
    for i in range(draw(st.integers(0, 3))):
        tag = draw(st.sampled_from(["Labels", "Labels", "Choices", "Choices", "TextArea", "RectangleLabels"]))
        to = draw(st.sampled_from(targets[:len(objects)]) if draw(st.integers(0, 5)) else st.sampled_from(targets))
        pool = LABELS if tag.endswith("Labels") else CHOICES
        labels = draw(st.lists(st.sampled_from(pool), max_size=3)) if tag != "TextArea" else []
        if tag != "TextArea" and draw(st.integers(0, 6)) and not labels:
            labels = [pool[0]]
        attrs = {"name": f"c{i}", "toName": to}
        if tag == "Choices" and draw(st.booleans()):
            attrs["choice"] = "multiple"
        if tag == "Choices" and draw(st.integers(0, 6)) == 0:
            attrs["perRegion"] = "true"
        controls.append((tag, attrs, labels))
    parts = [f'<Text name="{n}" value="{v}"/>' if t == "Text" else f'<{t} name="{n}" value="{v}"/>' for n, t, v in objects]
    for tag, attrs, labels in controls:
        child = "Label" if tag.endswith("Labels") else "Choice"
        inner = "".join(f'<{child} value="{x}"/>' for x in labels)
        parts.insert(draw(st.integers(0, len(parts))),
                     f"<{tag} " + " ".join(f'{k}="{v}"' for k, v in attrs.items()) + f">{inner}</{tag}>")
    return "<View>" + "".join(parts) + "</View>"


def oracle(xml: str) -> tuple[bool, dict, dict]:
    """(supported?, controls name -> element, objects name -> element), from the XML alone."""
    root = ET.fromstring(xml)
    objects = {el.get("name"): el for el in root if el.tag in ("Text", "Image")}
    controls = {el.get("name"): el for el in root if el.get("toName") is not None}
    labelling = [el for el in controls.values() if el.tag in ("Labels", "Choices")]
    ok = bool(labelling) and not any(el.tag.endswith("Labels") and el.tag != "Labels" for el in controls.values())
    for el in labelling:
        obj = objects.get(el.get("toName"))
        ok &= (obj is not None and obj.tag == "Text" and bool((obj.get("value") or "").lstrip("$"))
               and len(el) > 0 and el.get("perRegion") != "true")
    for tag in ("Labels", "Choices"):
        ok &= sum(el.tag == tag for el in labelling) <= 1
    ok &= len({el.get("toName") for el in labelling}) <= 1
    return ok, controls, objects


class EveryLabelModel:
    """Stands in for a trained model: predicts every label over the first word and every choice,
    so a region for each control the spec kept must come back."""

    def __init__(self, spec):
        self.spec = spec

    def predict(self, texts):
        out = []
        for t in texts:
            end = t.index(" ") if " " in t else len(t)
            spans = [Span(0, end, lab, 0.9) for lab in (self.spec.ner.labels if self.spec.ner else [])]
            choices = [(c, 0.5) for c in (self.spec.choices.choices if self.spec.choices else [])]
            out.append(SimpleNamespace(spans=spans, choices=choices, score=0.5))
        return out


@pytest.fixture(scope="module")
def predict_app(tmp_path_factory):
    from backend.app import create_app
    from backend.settings import Settings

    app = create_app(Settings.from_env({"MODEL_DIR": str(tmp_path_factory.mktemp("props") / "var"),
                                        "LOG_LEVEL": "CRITICAL", "PREDICT_SOURCE": "model"}))
    yield app
    app.extensions["lal"]["queue"].close()


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(xml=configs())
def test_predicted_regions_name_their_own_control_and_object(predict_app, xml):
    from backend.errors import BadRequest
    from backend.label_config import parse_label_config

    supported, controls, objects = oracle(xml)
    try:
        spec = parse_label_config(xml)
    except BadRequest as e:
        assert not supported, f"refused a supported config: {e.message}\n{xml}"
        assert "This backend supports" in e.message
        return
    assert supported, f"accepted a config it would misread: {spec}\n{xml}"
    # the one data key every path reads is the value of each control's own toName object
    for c in (spec.ner, spec.choices):
        if c is not None:
            assert spec.value_key == objects[controls[c.from_name].get("toName")].get("value").lstrip("$")

    backend = predict_app.extensions["lal"]["backend"]
    backend.cache.get = lambda pid: ("v1", EveryLabelModel(spec))
    r = predict_app.test_client().post("/predict", json={
        "project": 1, "label_config": xml, "tasks": [{"id": 1, "data": dict(TEXTS)}]})
    assert r.status_code == 200, r.get_json()
    regions = r.get_json()["results"][0]["result"]
    kinds = {"labels": "Labels", "choices": "Choices"}
    for reg in regions:
        ctl = controls.get(reg["from_name"])
        assert ctl is not None and ctl.tag == kinds[reg["type"]], (reg, xml)
        assert reg["to_name"] == ctl.get("toName") and objects[reg["to_name"]].tag == "Text", (reg, xml)
        if reg["type"] == "labels":
            field = objects[reg["to_name"]].get("value").lstrip("$")
            v = reg["value"]
            assert TEXTS[field][v["start"]:v["end"]] == v["text"], (reg, xml)
            assert v["labels"][0] in [x.get("value") for x in ctl]
        else:
            assert set(reg["value"]["choices"]) <= {x.get("value") for x in ctl}
    wanted = {el.get("name") for el in controls.values() if el.tag in ("Labels", "Choices")}
    assert {reg["from_name"] for reg in regions} == wanted, (regions, xml)
