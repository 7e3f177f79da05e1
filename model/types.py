"""Plain data types shared by the model package and the backend.

They carry character offsets into the original task text, never token indices, because Label
Studio regions are character spans and every conversion must round-trip exactly.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Token:
    """A token of a text with its exact character offsets: ``text[start:end] == token.text``."""

    text: str
    start: int
    end: int


@dataclass(frozen=True)
class Span:
    """An entity span ``text[start:end]`` with one label and an optional confidence in [0, 1]."""

    start: int
    end: int
    label: str
    score: float | None = None


@dataclass
class Example:
    """One human-labelled task as the local models see it.

    ``spans`` holds the NER regions, ``choices`` the selected classes; either may be empty when
    the project's config has only the other control.
    """

    text: str
    spans: list[Span] = field(default_factory=list)
    choices: list[str] = field(default_factory=list)
    task_id: int | None = None
