"""A small Dockerfile reader for the deployment tests: instructions with continuation lines
joined, ``ARG`` defaults, ``ENV`` pairs, and JSON-form ``CMD``/``HEALTHCHECK``."""
from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Dockerfile:
    instructions: list[tuple[str, str]]
    args: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def read(cls, path: Path) -> "Dockerfile":
        joined, buf = [], ""
        for raw in Path(path).read_text().splitlines():
            line = raw.strip()
            if not buf and (not line or line.startswith("#")):
                continue
            if line.endswith("\\"):
                buf += line[:-1] + " "
                continue
            buf += line
            op, _, rest = buf.partition(" ")
            joined.append((op.upper(), rest.strip()))
            buf = ""
        df = cls(joined)
        for op, rest in joined:
            if op == "ARG":
                name, _, default = rest.partition("=")
                df.args[name] = default
            elif op == "ENV":
                for pair in shlex.split(rest):
                    k, _, v = pair.partition("=")
                    df.env[k] = v
        return df

    def all(self, op: str) -> list[str]:
        return [rest for o, rest in self.instructions if o == op]

    def one(self, op: str) -> str:
        (rest,) = self.all(op)
        return rest

    @property
    def cmd(self) -> list[str]:
        return json.loads(self.one("CMD"))

    @property
    def healthcheck(self) -> tuple[str, list[str]]:
        """(options, exec-form command) of the HEALTHCHECK."""
        rest = self.one("HEALTHCHECK")
        options, _, cmd = rest.partition(" CMD ")
        return options, json.loads(cmd)

    def pip_runs(self) -> list[str]:
        """Every ``pip install`` command of the RUN lines, in order (``&&``-chains split)."""
        out = []
        for run in self.all("RUN"):
            out += [c.strip() for c in run.split("&&") if c.strip().startswith("pip install")]
        return out
