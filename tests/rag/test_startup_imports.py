"""Start-up cost: a one-shot BM25 search never imports the dense stack or scipy; a dense one, with
the encoder's ONNX graph cached, never imports torch (rag.onnx_fast).

``rag search --mode bm25`` is a one-shot command: every heavy module imported on its path is paid
on every call (torch alone is ~1-2 s). These tests run the real CLI entry point in a fresh
interpreter and look at ``sys.modules`` afterwards, so any new top-level import of a heavy
package on that path fails here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parents[1] / "fixtures"
ROOT = Path(__file__).parents[2]
HEAVY = ("torch", "transformers", "sentence_transformers", "faiss", "scipy", "onnxruntime", "sklearn", "ray",
         "numba")  # numba: only corpora large enough to prune (50k+ passages) load the compiled BM25

_PROBE = """
import json, sys
from rag.cli import main
rc = main(sys.argv[1:])
print(json.dumps({"rc": rc, "heavy": [m for m in %r if m in sys.modules]}))
""" % (HEAVY,)


def _run(*args: str, env: dict | None = None) -> dict:
    env = {**os.environ, **(env or {}), "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", _PROBE, *args], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    return {**json.loads(lines[-1]), "out": "\n".join(lines[:-1])}


@pytest.fixture(scope="module")
def bm25_index(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("startup") / "bm25"
    result = _run("index", str(FIXTURES / "corpus.jsonl"), "--out", str(out), "--no-dense")
    assert result["rc"] == 0
    return out


def test_bm25_search_imports_no_dense_stack_and_no_scipy(bm25_index):
    # Given a BM25 index / When one query is searched through the CLI in a fresh interpreter
    result = _run("search", "--index", str(bm25_index), "--mode", "bm25", "-k", "3", "--json", "why is the sky blue")
    # Then it answered, and none of the heavy packages was imported
    assert result["rc"] == 0
    assert result["heavy"] == []


@pytest.fixture(scope="module")
def dense_index(tmp_path_factory) -> tuple[Path, dict]:
    """A default (onnx-int8) BM25 + dense index of the fixture corpus, built with an empty ONNX cache."""
    pytest.importorskip("onnxruntime")
    root = tmp_path_factory.mktemp("startup-dense")
    env = {"RAG_ONNX_CACHE": str(root / "onnx-cache")}
    result = _run("index", str(FIXTURES / "corpus.jsonl"), "--out", str(root / "index"), env=env)
    assert result["rc"] == 0
    return root / "index", env


def test_dense_search_with_a_cached_graph_imports_no_torch(dense_index):
    # Given a default index whose encoder's ONNX graph is cached (the build exported it)
    index, env = dense_index
    # When one dense query is searched through the CLI in a fresh interpreter
    result = _run("search", "--index", str(index), "--mode", "dense", "-k", "3", "--json", "why is the sky blue", env=env)
    # Then it answered without torch, transformers or sentence-transformers
    assert result["rc"] == 0
    assert not {"torch", "transformers", "sentence_transformers"} & set(result["heavy"])
    assert "onnxruntime" in result["heavy"]  # it did encode the query, through ONNX Runtime


def test_dense_search_without_a_cached_graph_still_works(dense_index, tmp_path):
    # Given the same index but an empty ONNX cache
    index, env = dense_index
    # When a dense query is searched / Then it loads the model the usual way (torch) and answers as the torch-free path
    warm = _run("search", "--index", str(index), "--mode", "dense", "-k", "3", "--json", "why is the sky blue", env=env)
    result = _run("search", "--index", str(index), "--mode", "dense", "-k", "3", "--json", "why is the sky blue",
                  env={"RAG_ONNX_CACHE": str(tmp_path / "empty")})
    assert result["rc"] == 0
    assert "torch" in result["heavy"]
    assert "torch" not in warm["heavy"] and json.loads(result["out"]) == json.loads(warm["out"])


def test_importing_the_search_path_is_light():
    # Given a fresh interpreter / When the modules of the BM25 search path are imported
    code = ("import sys; import rag.cli, rag.cli.search, rag.index, rag.retrievers, rag.bm25, indexes.bm25_store; "
            f"print([m for m in {HEAVY!r} if m in sys.modules])")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    # Then nothing heavy came with them
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
