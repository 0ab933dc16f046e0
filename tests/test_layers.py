"""The layers import in one direction: indexes/ ← rag/ ← eval/, service/ (rag/cli/ composes them all)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


def imported_packages(path: Path) -> set[str]:
    """Top-level packages a module imports anywhere (module level or inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def modules(package: str, exclude: str | None = None) -> list[Path]:
    return [p for p in sorted((ROOT / package).rglob("*.py")) if exclude is None or exclude not in p.parts]


@pytest.mark.parametrize("package, forbidden, exclude", [
    ("indexes", {"rag", "eval", "service"}, None),
    ("rag", {"eval", "service"}, "cli"),  # the CLI is the composition root
])
def test_no_upward_imports(package, forbidden, exclude):
    # Given every module of the layer
    files = modules(package, exclude)
    assert files
    # Then none imports a layer above it
    offenders = {str(p.relative_to(ROOT)): sorted(imported_packages(p) & forbidden) for p in files}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_check_sees_imports_inside_functions(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("def f():\n    from eval.retrieval import evaluate\n    import service.app\n")
    assert imported_packages(f) == {"eval", "service"}
