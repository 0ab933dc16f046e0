"""The declared dependency ranges are the ones CI tests and the adapters enforce.

``.ci/min_constraints.py`` turns pyproject.toml's lower bounds into the pins of the minimum
environment that ``make test-min`` (run by ``.ci/run``) tests; ``rag.compat`` refuses versions
older than its ``MIN_VERSION``. These tests keep the three in step.
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def min_constraints():
    spec = importlib.util.spec_from_file_location("min_constraints", ROOT / ".ci" / "min_constraints.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_dependency_has_a_lower_bound_that_ci_pins(min_constraints, capsys):
    # Given pyproject.toml's runtime and optional requirements
    bounds = min_constraints.lower_bounds(ROOT / "pyproject.toml")
    # When the constraints file is generated
    assert min_constraints.main(["min_constraints.py", str(ROOT / "pyproject.toml")]) == 0
    pins = dict(line.split("==") for line in capsys.readouterr().out.split() if "==" in line)
    # Then every dependency but torch (see pyproject.toml) is pinned to its lower bound
    assert {"transformers", "sentence-transformers", "numpy", "bm25s"} <= set(bounds)
    assert pins == {name: v for name, v in bounds.items() if name not in min_constraints.UNTESTED}


def test_a_requirement_without_a_lower_bound_is_refused(min_constraints, tmp_path):
    # Given a project that depends on a package with no lower bound
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\nname = "x"\ndependencies = ["numpy<3"]\n', encoding="utf-8")
    # When / Then
    with pytest.raises(SystemExit, match="'numpy<3' has no '>=' lower bound"):
        min_constraints.lower_bounds(pyproject)


@pytest.mark.parametrize("package, adapter", [("transformers", "rag.compat.transformers"),
                                              ("sentence-transformers", "rag.compat.sentence_transformers"),
                                              ("numba", "rag.compat.numba")])
def test_adapters_require_the_declared_lower_bound(min_constraints, package, adapter):
    # Given the adapter of a dependency whose internals the toolkit uses
    module = importlib.import_module(adapter)
    # When / Then it refuses exactly what pyproject.toml excludes
    assert module.MIN_VERSION == min_constraints.lower_bounds(ROOT / "pyproject.toml")[package]
