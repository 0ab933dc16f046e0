"""Package docstrings stay true: each names every module and sub-package it contains.

A package docstring is the map a reader opens first; one that omits modules sends them to
``ls``. The check is by name (a whole word in the ``__init__.py`` docstring), so it fails the day
a module is added without a line saying what it is.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = sorted(p.parent for top in ("rag", "indexes", "eval", "service") for p in (ROOT / top).rglob("__init__.py"))


def missing_from_docstring(package: Path) -> list[str]:
    """Modules and sub-packages of ``package`` that its ``__init__`` docstring does not name."""
    doc = ast.get_docstring(ast.parse((package / "__init__.py").read_text(encoding="utf-8"))) or ""
    names = [p.stem for p in package.glob("*.py") if p.stem not in ("__init__", "__main__")]
    names += [p.name for p in package.iterdir() if (p / "__init__.py").is_file()]
    return sorted(n for n in names if not re.search(rf"(?<![\w]){re.escape(n)}(?![\w])", doc))


@pytest.mark.parametrize("package", PACKAGES, ids=[p.relative_to(ROOT).as_posix() for p in PACKAGES])
def test_package_docstring_names_every_module(package):
    # Given the package's modules / When its docstring is read / Then each is named
    assert missing_from_docstring(package) == [], f"{package.relative_to(ROOT)}/__init__.py docstring omits these modules"
