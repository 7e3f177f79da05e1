"""The service packages stand alone: what the Docker image copies (backend/, model/) never imports
the tests or the dev tools (fakes, Label Studio launcher, demo), so the image cannot break on a
module it does not hold."""
from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(module, at module level) for every import in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    top = set(map(id, tree.body))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, id(node) in top) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.append((node.module, id(node) in top))
    return out


def test_service_packages_never_import_tests_or_devtools():
    bad = []
    for pkg in ("backend", "model"):
        for path in sorted((REPO / pkg).rglob("*.py")):
            rel = path.relative_to(REPO).as_posix()
            for module, top_level in _imports(path):
                root = module.split(".")[0]
                # the simulation (not served) may load the fake LLM server on demand (--fake-llm)
                allowed = (root == "devtools" and rel.startswith("model/simulation/")
                           and not top_level)
                if root in ("tests", "devtools", "benchmarks") and not allowed:
                    bad.append(f"{rel} imports {module}")
    assert not bad, bad


def test_moved_modules_are_gone_from_the_service_packages():
    for old in ("backend/demo.py", "backend/ls_process.py", "model/simulate.py",
                "model/simulate_oracles.py", "tests/fakellm"):
        assert not (REPO / old).exists(), old
    assert (REPO / "devtools" / "fakellm" / "server.py").is_file()
    assert (REPO / "model" / "simulation" / "__main__.py").is_file()
