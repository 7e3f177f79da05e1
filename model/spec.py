"""What a Label Studio project asks the models to produce, independent of the XML it came from.

``backend/label_config.py`` parses and validates the XML into a ``TaskSpec``; the models only
ever see this. Both controls may be present in one config (NER and classification together).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NERControl:
    """A ``<Labels>`` control over a ``<Text>`` object."""

    from_name: str
    to_name: str
    value_key: str  # the task data key the Text reads, e.g. "text" for value="$text"
    labels: tuple[str, ...]


@dataclass(frozen=True)
class ChoicesControl:
    """A ``<Choices>`` control over a ``<Text>`` object."""

    from_name: str
    to_name: str
    value_key: str
    choices: tuple[str, ...]
    multi_label: bool = False


@dataclass(frozen=True)
class TaskSpec:
    ner: NERControl | None = None
    choices: ChoicesControl | None = None

    @property
    def kinds(self) -> list[str]:
        return [k for k, c in (("ner", self.ner), ("choices", self.choices)) if c is not None]
