"""The declared seams: VectorStore, ScoringRetriever, QueryEncoder; the backend spec and its faiss alias."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
from tests.rag.live_helpers import HashEncoder

from indexes.dense_store import DenseStore
from indexes.manifest import BM25Spec, DenseInfo, EncoderSpec
from indexes.vector_store import VectorStore
from rag.cli import main
from rag.fusion import convex
from rag.index import open_index
from rag.indexer import IndexOptions, build_index
from rag.protocols import QueryEncoder, ScoringRetriever
from rag.retrievers import BM25Retriever, HybridConfig, HybridRetriever

ROOT = Path(__file__).parents[2]
FIXTURES = ROOT / "tests" / "fixtures"


def test_implementations_satisfy_the_protocols(sample_index, encoder):
    index = open_index(sample_index, encoder=encoder)
    assert isinstance(index.dense.dense, VectorStore) and isinstance(index.dense.dense, DenseStore)
    assert isinstance(encoder, QueryEncoder) and isinstance(HashEncoder(), QueryEncoder)
    assert isinstance(index.retriever("bm25"), ScoringRetriever) and isinstance(index.retriever("dense"), ScoringRetriever)


def test_hybrid_fuses_any_two_scoring_retrievers(tmp_path):
    # Given two BM25 retrievers with different parameters over one index
    build_index(FIXTURES / "corpus.jsonl", tmp_path / "idx", IndexOptions(encoder=None, progress=False))
    a = open_index(tmp_path / "idx").bm25
    b = open_index(tmp_path / "idx", bm25=BM25Spec(variant="atire", k1=1.2, b=0.75)).bm25
    hybrid = HybridRetriever(a, b, HybridConfig(alpha=0.3, depth=5))
    query = "blue light scattering in the sky"
    # When
    rows, scores = hybrid.rank_batch([query], 3)[0]
    # Then: the union of both top-5 lists, each scored exactly by both, fused convexly
    cand = np.union1d(a.rank(query, 5)[0], b.rank(query, 5)[0])
    fused = convex(a.score_rows(query, cand), b.score_rows(query, cand), 0.3, "zscore")
    order = np.lexsort((cand, -fused))[:3]
    assert rows.tolist() == cand[order].tolist() and np.allclose(scores, fused[order])
    assert isinstance(a, BM25Retriever)


def test_vector_store_add_and_remove_equal_a_store_of_the_result():
    # Given windows of 3 passages (passage 1 has two windows)
    rng = np.random.default_rng(0)
    v = rng.normal(size=(4, 8)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    from indexes.manifest import VectorBackendSpec

    spec = VectorBackendSpec()
    store = DenseStore.from_arrays(v[:3], np.array([0, 1, 1]), spec)
    # When one passage is added and passage 0 removed
    grown = store.add(v[3:], np.array([0]))
    shrunk = grown.remove(np.array([0]))
    # Then: the same as a store built directly
    direct = DenseStore.from_arrays(v[1:], np.array([0, 0, 1]), spec)
    q = rng.normal(size=(2, 8)).astype(np.float32)
    assert np.array_equal(shrunk.search(q, 2)[1], direct.search(q, 2)[1])
    assert np.array_equal(shrunk.search(q, 2)[0], direct.search(q, 2)[0])
    assert len(grown) == 3 and grown.vectors_of(np.array([1]))[0].shape == (2, 8)


def test_faiss_is_a_deprecated_alias_of_the_backend_spec(tmp_path, capsys):
    # Given a manifest record written before the backend spec
    enc = EncoderSpec(model="m", dim=4).model_dump()
    old = DenseInfo.model_validate({"encoder": enc, "faiss": {"kind": "hnsw"}, "vectors": 3})
    # Then it reads as the backend, and .faiss still answers
    assert old.backend.kind == "hnsw" and old.faiss is old.backend
    assert "faiss" not in old.model_dump() and old.model_dump()["backend"]["library"] == "faiss"
    # And --faiss still works on the command line, with a note
    corpus = FIXTURES / "corpus.jsonl"
    assert main(["index", str(corpus), "--out", str(tmp_path / "i"), "--no-dense", "--faiss", "flat"]) == 0
    assert "--faiss is deprecated" in capsys.readouterr().err


# The benchmarks allowed to name FAISS or its files outside indexes/: the scale-out cost model measures
# FAISS's own index structures (flat, int8, HNSW, IVF-PQ) at sizes no index folder is built for, next to
# Milvus Lite; the Ray build benchmark compares two builds' vector files as files; the filter recall
# benchmark times the FAISS store's own filtered-search paths (selector only, exact re-search) against each
# other; the Milvus parity benchmark replays a FAISS folder's vector files into Milvus (no re-encoding).
RAW_LIBRARY_BENCHMARKS = {"eval/benchmarks/scale_cost.py", "eval/benchmarks/ray_build.py",
                          "eval/benchmarks/filter_recall.py", "eval/benchmarks/milvus_parity.py"}


def test_nothing_outside_indexes_names_faiss():
    # Given every module of rag/, service/ and eval/ (but the cost model that measures FAISS itself)
    offenders = []
    for path in [*ROOT.glob("rag/**/*.py"), *ROOT.glob("service/**/*.py"), *ROOT.glob("eval/**/*.py")]:
        if str(path.relative_to(ROOT)) in RAW_LIBRARY_BENCHMARKS:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""] + [a.name for a in node.names]
            if any(n == "faiss" or n.startswith("faiss.") or n in ("indexes.dense_store", "FaissSpec", "DenseStore") for n in names):
                offenders.append(str(path.relative_to(ROOT)))
    # Then none imports FAISS or its store: they go through indexes.vector_store
    assert offenders == []
