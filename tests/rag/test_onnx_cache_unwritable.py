"""An ONNX graph cache that cannot be written is said once per process, naming the folder and ``$RAG_ONNX_CACHE``."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rag import onnx_cache


@pytest.fixture
def fresh_process_state(monkeypatch):
    """As in a new process: nothing warned yet."""
    monkeypatch.setattr(onnx_cache, "_warned", False, raising=False)


@pytest.mark.parametrize("make_cache", [
    lambda tmp: tmp / "a-file",            # the variable names a regular file
    lambda tmp: tmp / "a-file" / "sub",    # a folder below a regular file
])
def test_an_unwritable_cache_warns_once_naming_folder_and_variable(make_cache, tmp_path, monkeypatch, caplog,
                                                                   fresh_process_state):
    # Given: $RAG_ONNX_CACHE where no folder can be made
    (tmp_path / "a-file").write_text("not a folder")
    cache = make_cache(tmp_path)
    monkeypatch.setenv(onnx_cache.CACHE_ENV, str(cache))
    # When: three graphs (and a torch-free entry) are stored, as three loads of the encoder would
    with caplog.at_level(logging.DEBUG, logger=onnx_cache.__name__):
        for key in ("a" * 64, "b" * 64, "c" * 64):
            onnx_cache.write_graph(key, b"graph")
        onnx_cache.write_file(onnx_cache.cache_dir() / "fast" / "k.json", b"{}")
    # Then: one warning line, naming the folder and the variable; nothing was written, the file is untouched
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, warnings
    assert str(cache) in warnings[0] and "$RAG_ONNX_CACHE" in warnings[0] and "\n" not in warnings[0]
    assert (tmp_path / "a-file").read_text() == "not a folder"


def test_a_writable_cache_never_warns(tmp_path, monkeypatch, caplog, fresh_process_state):
    # Given: a writable cache folder
    monkeypatch.setenv(onnx_cache.CACHE_ENV, str(tmp_path / "cache"))
    # When
    with caplog.at_level(logging.DEBUG, logger=onnx_cache.__name__):
        onnx_cache.write_graph("d" * 64, b"graph")
    # Then: the graph is there and nothing was logged
    assert onnx_cache.read_graph("d" * 64) == b"graph" and caplog.records == []


def test_the_warning_reaches_stderr_once_in_a_plain_process(tmp_path):
    # Given: a process with no logging configured and a cache path under a regular file (as /proc/nope: no mkdir)
    (tmp_path / "f").write_text("x")
    env = {**os.environ, onnx_cache.CACHE_ENV: str(tmp_path / "f" / "onnx"),
           "PYTHONPATH": str(Path(__file__).parents[2]) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    code = "from rag import onnx_cache\nfor k in 'ab': onnx_cache.write_graph(k * 64, b'g')\n"
    # When
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    # Then: exactly one stderr line, naming the folder and the variable
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 0 and len(lines) == 1, done.stderr
    assert str(tmp_path / "f" / "onnx") in lines[0] and "$RAG_ONNX_CACHE" in lines[0]
