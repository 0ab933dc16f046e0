"""One add/delete/search suite over both vector backends: FAISS files and Milvus (Lite, started here).

After each change the index must equal a fresh *local* build of the resulting corpus: the same
passages in the same order, BM25 scores (≤ 1e-9 for files; ≤ 1e-5 for Milvus, whose sparse inner
product is float32), dense scores ≤ 1e-5 (MaxP over windows included), and hybrid rankings.
A metadata filter (``Index.where``: the expression pushed into Milvus, the row mask for files) gives
the first ``k`` rows of the unfiltered exhaustive ranking whose metadata satisfy it, judged by the
filter semantics written out independently (``tests.rag.test_filtered_search.matches``).
Milvus tests skip, with the reason, where ``pymilvus``/``milvus-lite`` (the ``scale`` extra) are absent.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from tests.rag.live_helpers import HashEncoder, write_corpus
from tests.rag.test_filtered_search import matches

from indexes.errors import IndexFormatError, InputError
from indexes.manifest import MilvusSpec, VectorBackendSpec
from rag.cli import main
from rag.index import open_index
from rag.indexer import IndexOptions, build_index
from rag.live import add_documents, compact_index, delete_documents

ENCODER = HashEncoder()
QUERIES = ["virus vaccine", "blue sky light", "salt ocean storm rain", "gene cell protein", "protein protein"]
_names = itertools.count()


def _milvus_available() -> bool:
    try:
        import milvus_lite  # noqa: F401
        import pymilvus  # noqa: F401
    except ImportError:
        return False
    return True


needs_milvus = pytest.mark.skipif(not _milvus_available(), reason="pymilvus + milvus-lite not installed (pip install 'rag-toolkit[scale]')")


@pytest.fixture(scope="module")
def lite(tmp_path_factory) -> str:
    """A Milvus Lite database file for this module (Lite starts inside this process on first use)."""
    return str(tmp_path_factory.mktemp("milvus") / "lite.db")


def _options(backend: str, lite: str) -> IndexOptions:
    if backend == "faiss":
        return IndexOptions(progress=False)
    return IndexOptions(progress=False, backend=VectorBackendSpec(library="milvus"),
                        engine=MilvusSpec(uri=lite, collection=f"t{next(_names)}"))


def _rankings(index, mode: str) -> list[list[tuple[str, float]]]:
    ret = index.retriever(mode)
    return [[(p.id, s) for p, s in zip(index.store.get(rows.tolist()), scores.tolist())]
            for rows, scores in ret.rank_batch(QUERIES, len(index.store))]


def _assert_matches_fresh(live: Path, corpus: dict[str, int], work: Path, tol_bm25: float) -> None:
    fresh = work / f"fresh{next(_names)}"
    build_index(write_corpus(work / "fresh.jsonl", corpus), fresh, IndexOptions(progress=False), encoder=ENCODER)
    a, b = open_index(live, encoder=ENCODER), open_index(fresh, encoder=ENCODER)
    try:
        assert a.store.ids() == b.store.ids()
        for mode, tol in (("bm25", tol_bm25), ("dense", 1e-5), ("hybrid", 1e-4)):
            for got, want in zip(_rankings(a, mode), _rankings(b, mode)):
                assert len(got) == len(want), mode
                # same passages with the same scores; order may differ only inside float32 ties
                assert {p for p, _ in got} == {p for p, _ in want}, mode
                wanted = dict(want)
                assert max((abs(s - wanted[p]) for p, s in got), default=0.0) <= tol, mode
                assert np.all(np.diff([s for _, s in got]) <= tol), mode
        rows = np.arange(len(b.store))
        for q in QUERIES:  # exact scores of any rows (what fusion asks for)
            (_, score_a), = a.bm25.rank_scoring([q], 3)
            (_, score_b), = b.bm25.rank_scoring([q], 3)
            np.testing.assert_allclose(score_a(rows), score_b(rows), atol=tol_bm25)
            v = ENCODER.encode_queries([q])[0]
            np.testing.assert_allclose(a.dense.score_rows(v, rows), b.dense.score_rows(v, rows), atol=1e-5)
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize("backend", ["faiss", pytest.param("milvus", marks=needs_milvus)])
def test_add_delete_compact_equal_a_fresh_build(backend, lite, tmp_path):
    # Given an index of eight documents (some with two encoder windows) on the backend
    corpus = {f"d{i}": 0 for i in range(8)}
    live = tmp_path / "live"
    build_index(write_corpus(tmp_path / "c.jsonl", corpus), live, _options(backend, lite), encoder=ENCODER)
    tol = 1e-9 if backend == "faiss" else 1e-5
    _assert_matches_fresh(live, corpus, tmp_path, tol)
    # When documents are upserted (one replaced, two new)
    add_documents(live, write_corpus(tmp_path / "a.jsonl", {"d1": 1, "d8": 0, "d9": 2}), encoder=ENCODER, progress=False)
    corpus |= {"d1": 1, "d8": 0, "d9": 2}
    # Then
    _assert_matches_fresh(live, corpus, tmp_path, tol)
    # When documents are deleted, then the segments compacted
    delete_documents(live, ["d2", "d3", "missing"])
    del corpus["d2"], corpus["d3"]
    _assert_matches_fresh(live, corpus, tmp_path, tol)
    compact_index(live)
    # Then
    _assert_matches_fresh(live, corpus, tmp_path, tol)


FILTERS = [
    {"year": 2003},
    {"year": {"$gte": 2001, "$lt": 2004.5}},
    {"year": "n/a"},
    {"source": {"$in": ["a", "c"]}},
    {"source": {"$lte": "b"}, "open": False},
    {"flag": True},  # true is not 1: rows holding 1 or 1.0 stay out
    {"flag": 1},
    {"flag": {"$lte": 0.5}},  # 0 (a number), never false
    {"$or": [{"open": True}, {"$and": [{"source": "b"}, {"year": {"$gt": 2002}}]}]},
]


@pytest.mark.parametrize("backend", ["faiss", pytest.param("milvus", marks=needs_milvus)])
def test_filtered_search_is_the_unfiltered_exhaustive_ranking_filtered(backend, lite, tmp_path, capsys):
    # Given an index of documents with metadata, after an upsert (new metadata) and a delete
    live = tmp_path / "live"
    build_index(write_corpus(tmp_path / "c.jsonl", {f"d{i:02d}": 0 for i in range(24)}, metadata=True), live,
                _options(backend, lite), encoder=ENCODER)
    add_documents(live, write_corpus(tmp_path / "a.jsonl", {"d01": 1, "d05": 2, "d30": 0}, metadata=True),
                  encoder=ENCODER, progress=False)
    delete_documents(live, ["d02", "d07"])
    index = open_index(live, encoder=ENCODER)
    try:
        meta = [p.metadata for p in index.store.iter_all()]
        for f in FILTERS:
            where = index.where(json.dumps(f))
            keep = np.array([matches(m, f) for m in meta])
            assert where.mask.tolist() == keep.tolist() and 0 < where.count < len(meta), f
            for mode in ("bm25", "dense"):
                ret = index.retriever(mode)
                # When the same queries are ranked exhaustively without the filter, and top-5 with it
                full = ret.rank_batch(QUERIES, len(meta))
                got = ret.rank_batch(QUERIES, 5, where)
                # Then the filtered top-5 is the first 5 matching rows of the full ranking, same scores
                for (rows, scores), (all_rows, all_scores) in zip(got, full):
                    want = [i for i, r in enumerate(all_rows.tolist()) if keep[r]][:5]
                    assert rows.tolist() == all_rows[want].tolist(), (mode, f)
                    np.testing.assert_allclose(scores, all_scores[want], atol=1e-6)
        # And the CLI's --filter reaches the backend: the first 3 matching documents of the BM25 ranking
        f = FILTERS[-1]
        (all_rows, _), = index.retriever("bm25").rank_batch(["blue sky light"], len(meta))
        want = [index.store.get([r])[0].doc_id for r in all_rows.tolist() if matches(meta[r], f)][:3]
    finally:
        index.close()
    rc = main(["search", "--index", str(live), "--mode", "bm25", "--json", "-k", "3", "--filter", json.dumps(f), "blue sky light"])
    assert rc == 0 and [h["id"] for h in json.loads(capsys.readouterr().out)["hits"]] == want


@needs_milvus
def test_a_reader_keeps_its_dense_commit_and_is_told_to_reopen_for_bm25(lite, tmp_path):
    # Given a Milvus index opened by a reader
    live = tmp_path / "live"
    build_index(write_corpus(tmp_path / "c.jsonl", {f"d{i}": 0 for i in range(6)}), live, _options("milvus", lite), encoder=ENCODER)
    reader = open_index(live, encoder=ENCODER)
    before = _rankings(reader, "dense")
    # When another process deletes a document and compacts (the old segment's rows stay while held)
    delete_documents(live, ["d0"])
    try:
        # Then the reader's dense results are those of its commit, and BM25 refuses stale weights
        assert _rankings(reader, "dense") == before
        with pytest.raises(IndexFormatError, match="changed since it was opened"):
            reader.bm25.rank_batch(["virus"], 5)
    finally:
        reader.close()
    fresh = open_index(live, encoder=ENCODER)
    assert "d0" not in fresh.store.doc_ids() and fresh.bm25.rank_batch(["virus vaccine"], 5)[0][0].size
    fresh.close()


@needs_milvus
def test_the_token_is_read_from_the_environment_and_never_written(lite, tmp_path, monkeypatch):
    # Given a token in the environment (Milvus Lite ignores it; a server checks it)
    monkeypatch.setenv("RAG_MILVUS_TOKEN", "root:s3cret-token")
    live = tmp_path / "live"
    # When an index is built
    build_index(write_corpus(tmp_path / "c.jsonl", {"d0": 0, "d1": 0}), live, _options("milvus", lite), encoder=ENCODER)
    # Then the manifest names the URI and collection, and no file holds the token
    manifest = json.loads((live / "manifest.json").read_text())
    assert manifest["engine"]["uri"] == lite and manifest["dense"]["backend"]["library"] == "milvus"
    assert not any(b"s3cret" in f.read_bytes() for f in live.rglob("*") if f.is_file())
    assert not list(live.rglob("vectors.npy"))  # the vectors live in the engine only


@needs_milvus
def test_a_collection_of_another_index_is_not_replaced(lite, tmp_path):
    # Given a collection made for one index folder
    opts = _options("milvus", lite)
    build_index(write_corpus(tmp_path / "c.jsonl", {"d0": 0}), tmp_path / "one", opts, encoder=ENCODER)
    # When / Then another folder asks for the same collection
    with pytest.raises(InputError, match="belongs to another index"):
        build_index(tmp_path / "c.jsonl", tmp_path / "two", opts, encoder=ENCODER)


@needs_milvus
@pytest.mark.parametrize("variant", ["bm25l", "robertson"])
def test_variants_the_engine_cannot_hold_are_refused(lite, tmp_path, variant):
    from indexes.manifest import BM25Spec

    opts = IndexOptions(progress=False, bm25=BM25Spec(variant=variant), backend=VectorBackendSpec(library="milvus"),
                        engine=MilvusSpec(uri=lite, collection="refused"))
    with pytest.raises(InputError, match=f"--bm25-variant {variant} cannot be stored in Milvus"):
        build_index(write_corpus(tmp_path / "c.jsonl", {"d0": 0}), tmp_path / "x", opts, encoder=ENCODER)


@needs_milvus
@pytest.mark.parametrize("uri, message", [
    ("{tmp}/no/such/folder/m.db", "cannot open Milvus"),
    ("http://127.0.0.1:9", "cannot open Milvus"),  # nothing listens on the discard port
    ("ftp://example", "cannot open Milvus"),
])
def test_a_bad_or_unreachable_uri_is_one_line_and_exit_1(capsys, tmp_path, uri, message):
    # Given a corpus
    corpus = write_corpus(tmp_path / "c.jsonl", {"d0": 0})
    uri = uri.format(tmp=tmp_path)
    # When
    rc = main(["index", str(corpus), "--out", str(tmp_path / "i"), "--no-dense", "--backend", "milvus", "--uri", uri])
    err = capsys.readouterr().err
    # Then
    assert rc == 1 and err.startswith(f"rag: error: {uri}: {message}") and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "i").exists()


def test_backend_milvus_and_uri_go_together(capsys, tmp_path):
    corpus = write_corpus(tmp_path / "c.jsonl", {"d0": 0})
    rc = main(["index", str(corpus), "--out", str(tmp_path / "i"), "--no-dense", "--backend", "milvus"])
    assert rc == 1 and "--backend milvus needs --uri" in capsys.readouterr().err


@needs_milvus
def test_a_lite_file_locked_by_a_running_process_is_one_line_without_a_library_traceback(lite, tmp_path):
    # Given a BM25 index in the Lite file this test process has open (as a running `rag serve` holds it)
    import os
    import subprocess
    import sys

    live = tmp_path / "live"
    build_index(write_corpus(tmp_path / "c.jsonl", {"d0": 0, "d1": 0}), live,
                IndexOptions(progress=False, encoder=None, backend=VectorBackendSpec(library="milvus"),
                             engine=MilvusSpec(uri=lite, collection=f"t{next(_names)}")))
    # When another process searches it (its stderr as a user's terminal shows it: no logging configured)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[2]), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "rag.cli", "search", "--index", str(live), "--mode", "bm25", "virus"],
                          capture_output=True, text=True, env=env, timeout=120)
    # Then: exit 1 and exactly one line, which says the file is locked and what to do
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith(f"rag: error: {lite}: cannot open Milvus: the Milvus Lite file is locked by another process")
    assert "Traceback" not in proc.stderr and "stop that process" in proc.stderr
