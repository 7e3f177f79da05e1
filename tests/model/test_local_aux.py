"""Auxiliary labelled corpora (NER_AUX_DATA): the served model learns from a related language's
labels beside the project's own, maps foreign entity types to O, and refuses unusable corpora."""
from __future__ import annotations

import random

import pytest

from backend.label_config import parse_label_config
from backend.settings import Settings
from model.conll import read_aux_corpora
from model.local import LocalModel
from model.types import Example, Span
from tests.conftest import NER_CONFIG

TOWNS = ["Kano", "Zaria", "Kaduna", "Sokoto", "Katsina", "Bauchi", "Gombe", "Jos"]
PEOPLE = ["Musa", "Aisha", "Bello", "Hadiza"]


def write_aux(path, n=120, seed=0):
    """A "related language" corpus: people travel to towns (LOC); festivals are EVENTs, a type the
    project does not have."""
    rng = random.Random(seed)
    lines = []
    for _ in range(n):
        who, town = rng.choice(PEOPLE), rng.choice(TOWNS[:6])
        lines += [f"{who} B-PER", "ya O", "tafi O", f"{town} B-LOC", ". O", ""]
        lines += ["Sallah B-EVENT", "ta O", "zo O", ". O", ""]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def project_examples():
    """The project's own labels: people only, never a town."""
    out = []
    for i in range(12):
        who = PEOPLE[i % 4]
        text = f"{who} ya ce ."
        out.append(Example(text, [Span(0, len(who), "PER")]))
    return out


def test_aux_corpus_teaches_a_label_the_project_never_annotated(tmp_path):
    aux = write_aux(tmp_path / "aux.conll")
    spec = parse_label_config(NER_CONFIG)
    params = {"max_epochs": 15, "max_seconds": 60}
    plain = LocalModel(spec, ner_params=params).fit(project_examples())
    with_aux = LocalModel(spec, ner_params=params, ner_aux=[str(aux)], ner_aux_max=200).fit(project_examples())
    assert with_aux.metrics_["n_aux_sentences"] == 200 and "n_aux_sentences" not in plain.metrics_

    texts = [f"Bello ya tafi {t} ." for t in ("Katsina", "Kano")]
    for text, pred in zip(texts, with_aux.predict(texts)):
        town = text.split()[3]
        start = text.index(town)
        assert (start, start + len(town), "LOC") in {(s.start, s.end, s.label) for s in pred.spans}
    assert not any(s.label == "LOC" for p in plain.predict(texts) for s in p.spans)
    assert not any(s.label == "EVENT" for p in with_aux.predict(["Sallah ta zo ."]) for s in p.spans)


def test_unusable_aux_corpora_are_clear_errors(tmp_path):
    aux = write_aux(tmp_path / "aux.conll", n=5)
    X, Y = read_aux_corpora([aux], ["PER", "LOC"])
    assert len(X) == 10 and {t for y in Y for t in y} == {"O", "B-PER", "B-LOC"}  # EVENT -> O
    assert len(read_aux_corpora([aux], ["PER", "LOC"], max_sentences=3)[0]) == 3
    with pytest.raises(ValueError, match=r"none of the project's \['ORG'\]"):
        read_aux_corpora([aux], ["ORG"])
    with pytest.raises(FileNotFoundError, match="missing.conll"):
        read_aux_corpora([tmp_path / "missing.conll"], ["PER"])
    with pytest.raises(ValueError, match="NER_AUX_DATA: no such file"):
        Settings.from_env({"NER_AUX_DATA": f"{aux}, {tmp_path / 'typo.conll'}"})
    s = Settings.from_env({"NER_AUX_DATA": f"{aux},{aux}", "NER_AUX_MAX": "50"})
    assert s.ner_aux_data == (str(aux), str(aux)) and s.ner_aux_max == 50
