"""Pydantic models of what clients send: the only place raw request JSON is parsed.

Fields Label Studio adds over time are ignored (``extra="ignore"``); fields we need are validated
so a malformed payload becomes a 400 that names the field, never a crash deeper in. Raw bytes go
through ``loads`` first, which bounds nesting depth *before* the JSON parser recurses (100,000
nested brackets were a RecursionError, i.e. a 500, on every POST route).
"""
from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from backend.errors import BadRequest
from backend.ids import clip, parse_project_id, parse_version

MAX_TASKS_PER_REQUEST = 10_000
MAX_JSON_DEPTH = 64  # Label Studio's deepest payload (an annotation event) nests about 8 levels
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_OPEN = np.zeros(256, np.int8)
_OPEN[[ord("["), ord("{")]] = 1
_OPEN[[ord("]"), ord("}")]] = -1


def json_depth(raw: bytes) -> int:
    """Deepest bracket nesting of a JSON text, without parsing it: string literals are cut out
    (C-speed regex), then the running sum of +1 per ``[``/``{`` and -1 per ``]``/``}`` (numpy)."""
    skeleton = _JSON_STRING.sub(b"", raw)
    if not skeleton:
        return 0
    steps = _OPEN[np.frombuffer(skeleton, np.uint8)]
    return int(np.cumsum(steps, dtype=np.int64).max(initial=0))


def loads(raw: bytes | str, what: str = "request body") -> Any:
    """JSON text -> value, refusing (400) what no route could use: nesting deeper than
    ``MAX_JSON_DEPTH``, invalid JSON, and escaped lone surrogates."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    depth = json_depth(data)
    if depth > MAX_JSON_DEPTH:
        raise BadRequest(f"{what} nests {depth} levels deep; the limit is {MAX_JSON_DEPTH}")
    try:
        value = json.loads(data)
    except (ValueError, RecursionError):
        raise BadRequest(f"{what} is not valid JSON") from None
    # JSON may escape a lone surrogate ("\ud800"): valid JSON, but no file, model or XML parser can
    # encode it (found by tests/faults: 500s on /setup, /predict, /validate, /webhook)
    if _SURROGATE_ESCAPE.search(data):
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise BadRequest(f"{what} holds a lone surrogate (a \\ud800-\\udfff escape without its "
                             "pair): send valid Unicode text") from None
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


def project_id_of(value: Any) -> int:
    """The integer project id (see ``backend.ids.parse_project_id``)."""
    return parse_project_id(value)


class Task(_Model):
    id: int | None = None
    data: dict[str, Any]


class PredictParams(_Model):
    context: dict[str, Any] | None = None


class PredictRequest(_Model):
    tasks: list[Task] = Field(max_length=MAX_TASKS_PER_REQUEST)
    project: Any = None  # backend.ids.parse_project_id decides (pydantic would coerce True to 1)
    label_config: str | None = None
    params: PredictParams | None = None


class SetupRequest(_Model):
    project: Any = None
    schema_: str | None = Field(default=None, alias="schema")
    hostname: str | None = None
    access_token: str | None = Field(default=None, repr=False)
    extra_params: dict[str, Any] | str | None = None
    model_version: str | None = None

    @field_validator("extra_params")
    @classmethod
    def _extra(cls, v: Any) -> dict[str, Any] | None:
        """Label Studio sends *Extra params* as the JSON text the user typed: parse it here,
        under the same depth limit as a body."""
        if isinstance(v, str):
            if not v.strip():
                return None
            try:
                v = loads(v, "extra_params")
            except BadRequest as e:
                raise ValueError(e.message) from None
            if not isinstance(v, dict):
                raise ValueError('extra_params must be a JSON object, e.g. {"language": "Hausa"}')
        return v


class WebhookRequest(_Model):
    action: str
    project: Any = None  # an object with id and label_config, or the id
    annotation: dict[str, Any] | None = None
    task: dict[str, Any] | None = None

    @field_validator("action")
    @classmethod
    def _action(cls, v: str) -> str:
        if not v or len(v) > 64:
            raise ValueError("action must be a Label Studio event name such as ANNOTATION_CREATED")
        return v


class ValidateRequest(_Model):
    config: Any = None  # label_config.parse_label_config names a wrong type


class ProjectRequest(_Model):
    """/train: ``{"project": 3}``."""

    project: Any = None


class PinRequest(_Model):
    version: Any = Field(default=None, validate_default=True)

    @field_validator("version")
    @classmethod
    def _version(cls, v: Any) -> str:
        if v is None:
            raise ValueError('body must be {"version": "v2"}')
        try:
            return parse_version(v)
        except BadRequest as e:
            raise ValueError(e.message) from None


class JobRequest(_Model):
    kind: Any = None
    project: Any = None


def parse(model: type[_Model], payload: Any) -> Any:
    """Validate ``payload`` into ``model`` or raise a ``BadRequest`` listing the bad fields."""
    if not isinstance(payload, dict):
        raise BadRequest(f"expected a JSON object, got {type(payload).__name__}")
    try:
        return model.model_validate(payload)
    except ValidationError as e:
        parts = []
        for err in e.errors()[:5]:
            loc = ".".join(str(x)[:40] for x in err["loc"]) or "body"  # keys are client input too
            msg = err["msg"].removeprefix("Value error, ")
            parts.append(f"{loc}: {msg[:300]}")
        raise BadRequest("invalid payload: " + "; ".join(parts)) from None
