"""Pydantic models of what Label Studio 1.23 sends: the only place raw request JSON is parsed.

Fields Label Studio adds over time are ignored (``extra="ignore"``); fields we need are validated
so a malformed payload becomes a 400 that names the field, never a crash deeper in.
"""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from backend.errors import BadRequest

MAX_TASKS_PER_REQUEST = 10_000


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


def project_id_of(value: Any) -> int:
    """Label Studio sends the project as ``"7.1795606539"`` (id.created-timestamp), an int, or an
    object with ``id``; return the integer id."""
    if isinstance(value, dict):
        value = value.get("id")
    if isinstance(value, bool) or value is None:
        raise BadRequest("project is missing: expected an id like 7 or \"7.1795606539\"")
    if isinstance(value, int):
        pid = value
    else:
        head = str(value).split(".", 1)[0].strip()
        if not head.isdigit():
            raise BadRequest(f"project {str(value)[:40]!r} is not a Label Studio project id")
        pid = int(head)
    if pid <= 0 or pid > 2**31:
        raise BadRequest(f"project id {pid} is out of range")
    return pid


class Task(_Model):
    id: int | None = None
    data: dict[str, Any]


class PredictParams(_Model):
    context: dict[str, Any] | None = None


class PredictRequest(_Model):
    tasks: list[Task] = Field(max_length=MAX_TASKS_PER_REQUEST)
    project: str | int | None = None
    label_config: str | None = None
    params: PredictParams | None = None


class SetupRequest(_Model):
    project: str | int
    schema_: str | None = Field(default=None, alias="schema")
    hostname: str | None = None
    access_token: str | None = Field(default=None, repr=False)
    extra_params: dict[str, Any] | str | None = None
    model_version: str | None = None


class WebhookRequest(_Model):
    action: str
    project: dict[str, Any] | int | str | None = None
    annotation: dict[str, Any] | None = None
    task: dict[str, Any] | None = None

    @field_validator("action")
    @classmethod
    def _action(cls, v: str) -> str:
        if not v or len(v) > 64:
            raise ValueError("action must be a Label Studio event name such as ANNOTATION_CREATED")
        return v


def parse(model: type[_Model], payload: Any) -> Any:
    """Validate ``payload`` into ``model`` or raise a ``BadRequest`` listing the bad fields."""
    if not isinstance(payload, dict):
        raise BadRequest(f"expected a JSON object, got {type(payload).__name__}")
    try:
        return model.model_validate(payload)
    except ValidationError as e:
        parts = []
        for err in e.errors()[:5]:
            loc = ".".join(str(x) for x in err["loc"]) or "body"
            parts.append(f"{loc}: {err['msg']}")
        raise BadRequest("invalid payload: " + "; ".join(parts)) from None
