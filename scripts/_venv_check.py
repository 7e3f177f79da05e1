"""Does this virtualenv hold what its install stamps say, whole? Run by ``scripts/_venv.sh`` with
the venv's own interpreter; exit 0 when healthy, 1 (and the reason on stderr) when not.

Why: an install stopped half-way leaves distributions without metadata (pip then fails on every
later run with ``TypeError: expected string or bytes-like object, got 'NoneType'``) or packages
whose files are partly written. Checked here: every installed distribution has a name and a
version; each distribution a stamp names is installed with every file of its RECORD present; each
module a stamp names can be found. Stamps are ``req <name>`` / ``mod <module>`` lines.

``--names-from FILE`` prints the distribution names a requirements file asks for (following
``-r``), for the stamp written after a successful install.
"""
from __future__ import annotations

import importlib.metadata as md
import importlib.util
import re
import sys
from pathlib import Path

_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def requirement_names(path: Path) -> list[str]:
    names: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith(("-r ", "--requirement ")):
            names += requirement_names(path.parent / line.split(None, 1)[1])
        elif not line.startswith("-") and (m := _NAME.match(line)):
            names.append(m.group(1))
    return names


def problems(stamps: list[Path]) -> list[str]:
    out = []
    for d in md.distributions():
        name = d.metadata.get("Name") if d.metadata else None
        if not name or not d.version:
            out.append(f"half-written distribution {getattr(d, '_path', '?')}")
    for stamp in stamps:
        for line in stamp.read_text(encoding="utf-8").splitlines():
            kind, _, what = line.partition(" ")
            if kind == "req" and what:
                try:
                    dist = md.distribution(what)
                except md.PackageNotFoundError:
                    out.append(f"{what} is not installed ({stamp.name})")
                    continue
                missing = [f for f in dist.files or [] if not Path(dist.locate_file(f)).exists()]
                if missing:
                    out.append(f"{what}: {len(missing)} file(s) missing, e.g. {missing[0]}")
            elif kind == "mod" and what and importlib.util.find_spec(what) is None:
                out.append(f"module {what} not found ({stamp.name})")
    return out


def main(argv: list[str]) -> int:
    if argv[:1] == ["--names-from"]:
        print("\n".join(f"req {n}" for n in requirement_names(Path(argv[1]))))
        return 0
    found = problems([Path(a) for a in argv])
    for p in found[:5]:
        print(p, file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
