"""Print a pip constraints file that pins every dependency of pyproject.toml to its lower bound.

CI installs the package a second time under these constraints (``.ci/run``), so each declared
``>=`` bound is a version the test suite has passed with. ``torch`` is the one exception: every
torch on PyPI but the local CPU wheel (2.13.0) is a multi-GB CUDA build, so the minimum
environment keeps that wheel and the ``torch`` lower bound is not exercised (see README).

Usage: ``python .ci/min_constraints.py [pyproject.toml] > min-constraints.txt``
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

UNTESTED = {"torch"}  # kept at the installed CPU wheel, see the module docstring
# Packages we do not depend on directly whose newest release does not work with another
# dependency's lower bound; pinned only in the minimum environment, each with its reason.
TRANSITIVE = {
    "pyarrow": "<26",  # (via datasets) pyarrow 26 refuses NumPy < 2; numpy's lower bound is 1.26
}
LOWER = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*(.*)$")


def lower_bounds(pyproject: Path) -> dict[str, str]:
    """``{name: lower bound}`` of the runtime dependencies and every optional extra.

    Raises:
        SystemExit: a requirement has no ``>=`` lower bound (an unbounded range cannot be tested).
    """
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    requirements = list(project["dependencies"]) + [r for extra in project.get("optional-dependencies", {}).values() for r in extra]
    bounds: dict[str, str] = {}
    for req in requirements:
        match = LOWER.match(req)
        name, spec = match.group(1).lower().replace("_", "-"), match.group(3)
        low = re.search(r">=\s*([0-9][^,;\s]*)", spec)
        if low is None:
            raise SystemExit(f"{pyproject}: requirement {req!r} has no '>=' lower bound; declare the oldest version that works")
        bounds[name] = low.group(1)
    return bounds


def main(argv: list[str]) -> int:
    path = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parents[1] / "pyproject.toml"
    for name, version in sorted(lower_bounds(path).items()):
        if name not in UNTESTED:
            print(f"{name}=={version}")
    for name, spec in TRANSITIVE.items():
        print(f"{name}{spec}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
