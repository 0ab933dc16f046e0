"""Errors are a declared contract: each error class states its REST code; service/ maps codes to statuses."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import pytest

from indexes.errors import RagError
from service.errors import STATUS

PACKAGES = ("indexes", "rag", "eval", "service")


def _all_error_classes() -> list[type[RagError]]:
    for package in PACKAGES:
        root = importlib.import_module(package)
        for info in pkgutil.walk_packages(root.__path__, prefix=f"{package}."):
            if info.name.endswith("__main__"):
                continue
            try:
                importlib.import_module(info.name)
            except ImportError as exc:  # an optional extra (e.g. onnxruntime) that is not installed
                pytest.skip(f"{info.name}: {exc}")
    out, todo = [], [RagError]
    while todo:
        cls = todo.pop()
        out.append(cls)
        todo += cls.__subclasses__()
    return [c for c in out if c.__module__.split(".")[0] in PACKAGES]


def test_every_error_class_declares_a_unique_code_with_a_status():
    # Given every RagError subclass defined anywhere in the project
    classes = [c for c in _all_error_classes() if c is not RagError]
    assert len(classes) >= 10  # the four base kinds, storage, build lock, model, onnx, service's three
    # Then each declares its own code in its class body (not inherited, not derived from its name) ...
    undeclared = [c.__qualname__ for c in classes if "code" not in vars(c)]
    assert not undeclared, f"declare `code = ...` on {undeclared}"
    # ... the codes are unique ...
    codes = [c.code for c in classes]
    assert len(codes) == len(set(codes)), sorted(codes)
    # ... and the service maps every code to a 4xx/5xx status
    assert {c.code: c.__qualname__ for c in classes if c.code not in STATUS} == {}
    assert all(400 <= STATUS[code] < 600 for code in codes)


def test_codes_do_not_follow_class_names():
    # Given a renamed subclass of an error that declares its code
    from indexes.errors import InputError

    class RenamedInputProblem(InputError):
        pass

    # Then the code is still the declared one, and the storage layer knows no HTTP status
    assert RenamedInputProblem("x").code == "invalid_input"
    assert not hasattr(RagError, "http_status")


def test_error_base_imports_nothing_of_the_project():
    # When the error module is imported in a fresh interpreter
    code = ("import sys, indexes.errors; mods = [m for m in sys.modules if m.split('.')[0] in "
            "('indexes', 'rag', 'eval', 'service', 'numpy', 'sqlite3', 'torch', 'pydantic')]; print(sorted(mods))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    # Then only the (import-free) package and the error module itself are loaded
    assert out.strip() == "['indexes', 'indexes.errors']"
