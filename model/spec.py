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
    """One task text: when both controls are present they label the same ``<Text>`` object, so
    ``value_key`` is the one data key every path (training, predict, prelabel, LLM, live
    agreement, selection) reads. ``backend/label_config.py`` refuses configs that break this."""

    ner: NERControl | None = None
    choices: ChoicesControl | None = None

    def __post_init__(self) -> None:
        if self.ner is not None and self.choices is not None and (
                self.ner.to_name, self.ner.value_key) != (self.choices.to_name, self.choices.value_key):
            raise ValueError(f"<Labels> over {self.ner.to_name!r} and <Choices> over {self.choices.to_name!r}: "
                             "both controls must label the same <Text>")

    @property
    def value_key(self) -> str:
        """The task data key of the labelled text (``"text"`` for ``value="$text"``)."""
        control = self.ner or self.choices
        if control is None:
            raise ValueError("TaskSpec has no control")
        return control.value_key

    @property
    def kinds(self) -> list[str]:
        return [k for k, c in (("ner", self.ner), ("choices", self.choices)) if c is not None]
