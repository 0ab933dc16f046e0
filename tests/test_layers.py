"""The layer rule, checked on the source: imports only go down.

``service/  eval/  ->  rag/  ->  indexes/``: no module in ``indexes/`` imports ``rag``, ``eval`` or
``service``; no module in ``rag/`` outside ``rag/cli/`` (the composition root) imports ``eval`` or
``service``. Every ``import``/``from ... import`` is read with :mod:`ast`, including imports inside
functions and ``TYPE_CHECKING`` blocks, so a deferred import cannot hide an upward dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# package -> (top-level packages it must not import, sub-packages exempt from the rule)
RULES = {
    "indexes": ({"rag", "eval", "service"}, ()),
    "rag": ({"eval", "service"}, ("rag/cli",)),
}


def imported_packages(source: str, module: str) -> list[tuple[int, str]]:
    """Return ``(line, top-level package)`` for every absolute or relative import in ``source``.

    Args:
        source: Python source text.
        module: the dotted name of the module the source belongs to (resolves relative imports).

    Returns:
        One entry per imported name's top-level package, with the line of the import.

    Example:
        >>> imported_packages("import os.path\\nfrom eval.ppi import x\\nfrom . import y", "rag.a")
        [(1, 'os'), (2, 'eval'), (3, 'rag')]
    """
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolved against the importing module's package
                found.append((node.lineno, module.split(".")[0]))
            elif node.module:
                found.append((node.lineno, node.module.split(".")[0]))
    return sorted(found)


def upward_imports(package: str) -> list[str]:
    """Every import in ``package`` that breaks :data:`RULES`, as ``path:line imports pkg``."""
    forbidden, exempt = RULES[package]
    bad = []
    for path in sorted((ROOT / package).rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if any(rel.startswith(e + "/") for e in exempt):
            continue
        module = rel[: -len(".py")].replace("/", ".")
        bad += [f"{rel}:{line} imports {pkg}" for line, pkg in imported_packages(path.read_text(), module) if pkg in forbidden]
    return bad


@pytest.mark.parametrize("package", sorted(RULES))
def test_no_upward_imports(package):
    # Given the source tree of the package
    assert (ROOT / package / "__init__.py").is_file()
    # When every import in it is read / Then none reaches a layer above
    assert upward_imports(package) == []


def test_the_check_sees_deferred_and_type_checking_imports():
    # Given imports that run only inside a function or under TYPE_CHECKING
    source = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import service.app\ndef f():\n    from eval import ppi\n"
    # When / Then both are found, with their lines
    assert [(3, "service"), (5, "eval")] == [x for x in imported_packages(source, "rag.m") if x[1] != "typing"]
