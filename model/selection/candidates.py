"""The candidate list for annotator selection: a YAML or JSON file of OpenAI-compatible models.

Each entry names *where* the key lives (``api_key_env``, an environment variable name), never the
key itself: candidate files get committed and attached to reports. A file with an ``api_key``
field is refused with an error that does not echo the value.

Example (``examples/candidates.yaml``)::

    candidates:
      - name: gpt-4-turbo
        base_url: https://api.openai.com/v1
        model: gpt-4-turbo
        api_key_env: OPENAI_API_KEY
        price_in_per_1k: 0.01
        price_out_per_1k: 0.03
        temperature: 0.1
"""
from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")
_KNOWN = {"name", "base_url", "model", "api_key_env", "price_in_per_1k", "price_out_per_1k",
          "temperature", "options"}
_SECRET_FIELDS = {"api_key", "key", "token", "secret", "password"}


class CandidateError(ValueError):
    """A candidate file or entry is invalid (the message never contains a secret)."""


@dataclass(frozen=True)
class Candidate:
    """One LLM to evaluate. ``options`` holds further settings passed on to the LLM config
    (e.g. ``max_tokens``, ``json_mode``), as ``LLM_<NAME>`` environment entries."""

    name: str
    base_url: str
    model: str
    api_key_env: str | None = None
    price_in_per_1k: float = 0.0
    price_out_per_1k: float = 0.0
    temperature: float = 0.1
    options: Mapping[str, object] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, raw: Mapping[str, object]) -> Candidate:
        """Validate one entry; unknown keys go to ``options``, secret-looking keys are refused."""
        if not isinstance(raw, Mapping):
            raise CandidateError(f"a candidate must be a mapping, got {type(raw).__name__}")
        bad = sorted(k for k in raw if str(k).lower() in _SECRET_FIELDS)
        if bad:
            raise CandidateError(
                f"candidate {raw.get('name', '?')!r} has field(s) {bad}: put the key in an "
                "environment variable and name it with 'api_key_env' instead")
        for req in ("name", "base_url", "model"):
            if not raw.get(req):
                raise CandidateError(f"candidate {raw.get('name', '?')!r} lacks '{req}'")
        name = str(raw["name"])
        if not _NAME_RE.match(name):
            raise CandidateError(f"candidate name {name!r} must match {_NAME_RE.pattern} "
                                 "(it names result files)")
        options = dict(raw.get("options") or {})
        options.update({k: v for k, v in raw.items() if k not in _KNOWN})
        try:
            return cls(name=name, base_url=str(raw["base_url"]), model=str(raw["model"]),
                       api_key_env=(str(raw["api_key_env"]) if raw.get("api_key_env") else None),
                       price_in_per_1k=float(raw.get("price_in_per_1k", 0.0) or 0.0),
                       price_out_per_1k=float(raw.get("price_out_per_1k", 0.0) or 0.0),
                       temperature=float(raw.get("temperature", 0.1)), options=options)
        except (TypeError, ValueError) as exc:
            raise CandidateError(f"candidate {name!r}: {exc}") from None

    def env(self, environ: Mapping[str, str]) -> dict[str, str]:
        """The ``LLM_*`` mapping for ``LLMConfig.from_env``; the key is read from ``environ``
        under ``api_key_env`` (absent -> no key, fine for local servers)."""
        out = {"LLM_BASE_URL": self.base_url, "LLM_MODEL": self.model,
               "LLM_TEMPERATURE": str(self.temperature),
               "LLM_PRICE_IN_PER_1K": str(self.price_in_per_1k),
               "LLM_PRICE_OUT_PER_1K": str(self.price_out_per_1k)}
        for k, v in self.options.items():
            out[f"LLM_{str(k).upper()}"] = str(v)
        if self.api_key_env:
            out["LLM_API_KEY_ENV"] = self.api_key_env
            if environ.get(self.api_key_env):
                out["LLM_API_KEY"] = environ[self.api_key_env]
        return out

    def public_dict(self) -> dict:
        """Everything about the candidate that may go into a report (no key, only its env name)."""
        return {"name": self.name, "base_url": self.base_url, "model": self.model,
                "api_key_env": self.api_key_env, "price_in_per_1k": self.price_in_per_1k,
                "price_out_per_1k": self.price_out_per_1k, "temperature": self.temperature,
                "options": {k: v for k, v in self.options.items()
                            if str(k).lower() not in _SECRET_FIELDS}}


def parse_candidates(data: object) -> list[Candidate]:
    """Candidates from parsed YAML/JSON: a list, or a mapping with a ``candidates`` list."""
    if isinstance(data, Mapping):
        data = data.get("candidates")
    if not isinstance(data, list) or not data:
        raise CandidateError("expected a non-empty list of candidates (or {candidates: [...]})")
    cands = [Candidate.from_mapping(d) for d in data]
    names = [c.name for c in cands]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise CandidateError(f"duplicate candidate names: {dup}")
    return cands


def load_candidates(path: str | Path) -> list[Candidate]:
    """Read a ``.yaml``/``.yml`` or ``.json`` candidate file."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        data = yaml.safe_load(text)
    elif path.suffix.lower() == ".json":
        data = json.loads(text)
    else:
        raise CandidateError(f"{path.name}: expected .yaml, .yml or .json")
    return parse_candidates(data)
