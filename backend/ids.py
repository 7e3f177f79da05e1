"""The one parser of the ids a client may send: Label Studio project ids and model versions.

Why strict: ``str.isdigit()`` accepts "²", "①", "١٢" and "𝟏𝟐" (some of which ``int()`` then
refuses, some it silently maps to another number), ``\\d`` in a regex matches every Unicode digit,
and an unbounded id becomes a folder name (ENAMETOOLONG on 5,000 digits). Only ASCII digits of a
bounded length pass, so every id names exactly one folder under ``MODEL_DIR``.
"""
from __future__ import annotations

import re
from typing import Any

from backend.errors import BadRequest

PROJECT_ID_MAX = 2**31 - 1  # Label Studio's project ids are 32-bit signed integers
# Label Studio sends the project as "7.1795606539" (id.created-timestamp) or as a number
_PROJECT_RE = re.compile(r"([0-9]{1,10})(?:\.[0-9]{1,20})?", re.ASCII)
_VERSION_RE = re.compile(r"v([0-9]{1,9})", re.ASCII)
_JOB_RE = re.compile(r"[A-Za-z0-9_-]{1,64}", re.ASCII)  # uuid hex of the in-process queue, RQ's ids
ECHO_CHARS = 40  # at most this much of a refused value is echoed back (and logged)


def clip(value: Any, limit: int = ECHO_CHARS) -> str:
    """``repr`` of a client-supplied value, cut to ``limit`` characters: refusals name the value
    without echoing megabytes of it."""
    text = repr(value) if not isinstance(value, str) else repr(value[:limit + 1])
    return text if len(text) <= limit + 2 else text[:limit] + "...'"


def parse_project_id(value: Any) -> int:
    """An int id in 1..2^31-1 from what Label Studio sends: an int, ``"7"``, ``"7.1795606539"``
    or an object with ``id``. Booleans, floats and every other spelling are refused."""
    if isinstance(value, dict):
        value = value.get("id")
    if value is None:
        raise BadRequest('project is missing: expected an id like 7 or "7.1795606539"')
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise BadRequest(f"project {clip(value)} is not a Label Studio project id: expected an integer "
                         'or a string like "7.1795606539"')
    if isinstance(value, int):
        pid = value
    else:
        m = _PROJECT_RE.fullmatch(value) if len(value) <= 40 else None
        if m is None:
            raise BadRequest(f"project {clip(value)} is not a Label Studio project id: expected ASCII digits "
                             'like 7 or "7.1795606539"')
        pid = int(m.group(1))
    if not 1 <= pid <= PROJECT_ID_MAX:
        raise BadRequest(f"project id {clip(pid)} is out of range (1..{PROJECT_ID_MAX})")
    return pid


def parse_version(value: Any) -> str:
    """A model version name ``v1`` .. ``v999999999``."""
    if not isinstance(value, str) or len(value) > 10 or not _VERSION_RE.fullmatch(value):
        raise BadRequest(f"version {clip(value)} is not a model version: expected v1, v2, ...")
    return value


def version_number(value: str) -> int | None:
    """The number of a version directory name, or None for anything else (temp dirs, junk)."""
    m = _VERSION_RE.fullmatch(value) if len(value) <= 10 else None
    return int(m.group(1)) if m else None


def is_job_id(value: str) -> bool:
    """Whether ``value`` can name a job record at all (a job id becomes a file name)."""
    return bool(_JOB_RE.fullmatch(value)) if len(value) <= 64 else False
