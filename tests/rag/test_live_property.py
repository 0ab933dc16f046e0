"""Property: after any sequence of upserts, deletes and compactions, the index equals a fresh build.

BM25 scores of every passage for every query equal a fresh ``rag index`` of the resulting corpus
(≤ 1e-9: collection statistics are over live passages only), and dense flat rankings (rows'
passage ids and scores) are identical, windows (MaxP) included.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.rag.live_helpers import WORDS, HashEncoder, write_corpus

from indexes.errors import InputError
from rag.index import open_index
from rag.indexer import IndexOptions, build_index
from rag.live import add_documents, compact_index, delete_documents

IDS = [f"d{i}" for i in range(8)]
QUERIES = ["virus vaccine", "blue sky light", "salt ocean storm rain", "gene cell protein", "protein"]
ENCODER = HashEncoder()

docs_st = st.dictionaries(st.sampled_from(IDS), st.integers(0, 3), min_size=1, max_size=5)
op_st = st.one_of(
    st.tuples(st.just("add"), docs_st),
    st.tuples(st.just("delete"), st.lists(st.sampled_from(IDS + ["missing"]), min_size=1, max_size=3)),
    st.tuples(st.just("compact"), st.none()),
)


def _bm25_scores(index) -> dict[tuple[str, str], float]:
    ids = index.store.ids()
    bm25 = index.bm25
    return {(q, pid): float(s) for q in QUERIES for pid, s in zip(ids, bm25.scorer.scores(bm25.terms(q)))}


def _dense(index) -> list[list[tuple[str, float]]]:
    out = []
    for rows, scores in index.dense.rank_batch(QUERIES, len(index.store)):
        out.append(list(zip([p.id for p in index.store.get(rows.tolist())], scores.tolist())))
    return out


def _assert_equal_to_fresh(live: Path, corpus: dict[str, int], work: Path) -> None:
    fresh = work / "fresh"
    shutil.rmtree(fresh, ignore_errors=True)
    build_index(write_corpus(work / "fresh.jsonl", corpus), fresh, IndexOptions(progress=False), encoder=ENCODER)
    a, b = open_index(live, encoder=ENCODER), open_index(fresh, encoder=ENCODER)
    try:
        assert a.store.ids() == b.store.ids()
        sa, sb = _bm25_scores(a), _bm25_scores(b)
        assert sa.keys() == sb.keys()
        assert max(abs(sa[k] - sb[k]) for k in sa) <= 1e-9
        assert _dense(a) == _dense(b)
        assert a.manifest.corpus.documents == b.manifest.corpus.documents == len(corpus)
        assert a.manifest.bm25.vocabulary == b.manifest.bm25.vocabulary
        assert a.manifest.bm25.avgdl == pytest.approx(b.manifest.bm25.avgdl, abs=1e-12)
    finally:
        a.close()
        b.close()


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(initial=docs_st, ops=st.lists(op_st, min_size=1, max_size=5))
def test_any_sequence_of_changes_equals_a_fresh_build(initial, ops):
    # Given: an index of the initial corpus
    work = Path(tempfile.mkdtemp())
    try:
        live = work / "live"
        build_index(write_corpus(work / "init.jsonl", initial), live, IndexOptions(progress=False), encoder=ENCODER)
        corpus = dict(initial)
        for n, (kind, arg) in enumerate(ops):
            # When: one change
            if kind == "add":
                add_documents(live, write_corpus(work / f"add{n}.jsonl", arg), encoder=ENCODER, progress=False)
                corpus.update(arg)
            elif kind == "delete":
                if set(corpus) <= set(arg):
                    with pytest.raises(InputError, match="empty"):
                        delete_documents(live, arg)
                    continue
                report = delete_documents(live, arg)
                assert report.deleted == len(set(arg) & set(corpus))
                for d in arg:
                    corpus.pop(d, None)
            else:
                compact_index(live)
            # Then: it equals a fresh build of the resulting corpus
            _assert_equal_to_fresh(live, corpus, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_hand_worked_idf_after_a_delete(tmp_path):
    # Given: three one-passage documents; "salt" occurs in d1 and d2
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"_id": "d1", "text": "salt ocean"}\n{"_id": "d2", "text": "salt rain"}\n{"_id": "d3", "text": "storm"}\n')
    build_index(corpus, tmp_path / "idx", IndexOptions(encoder=None, progress=False))
    # When: d2 is deleted
    delete_documents(tmp_path / "idx", ["d2"])
    index = open_index(tmp_path / "idx")
    # Then: lucene idf over the live N=2, df=1: ln(1 + (2-1+.5)/(1+.5)) = ln 2; d1: tf=1, dl=2, live
    # lengths 2 and 1 -> avgdl 1.5, norm = 1-.4+.4*2/1.5 = 1.1333, tfc = 1/(1+.9*1.1333) = 0.49505
    hits = index.retriever("bm25").search("salt", 3)
    assert [h.id for h in hits] == ["d1"]
    assert hits[0].score == pytest.approx(np.log(2) * 1 / (1 + 0.9 * (0.6 + 0.4 * 2 / 1.5)), abs=1e-12)
    index.close()


def test_upsert_replaces_every_passage_of_a_document(tmp_path):
    # Given: a document long enough to be split into 3 passages (max 4 words, overlap 1)
    from indexes.manifest import ChunkingSpec

    opts = IndexOptions(encoder=None, progress=False, chunking=ChunkingSpec(max_words=4, overlap_words=1))
    (tmp_path / "a.jsonl").write_text('{"_id": "long", "text": "' + " ".join(WORDS[:10]) + '"}\n{"_id": "x", "text": "storm"}\n')
    build_index(tmp_path / "a.jsonl", tmp_path / "idx", opts)
    before = open_index(tmp_path / "idx").store.ids()
    # When: the document is replaced by a short version
    (tmp_path / "b.jsonl").write_text('{"_id": "long", "text": "rain"}\n')
    report = add_documents(tmp_path / "idx", tmp_path / "b.jsonl", progress=False)
    # Then: none of its old windows remain
    after = open_index(tmp_path / "idx").store.ids()
    assert len([p for p in before if p.startswith("long")]) == 3
    assert sorted(after) == ["long", "x"] and report.replaced == 1 and report.passages_deleted == 3


def test_a_format_1_index_takes_changes_and_a_rebuild_removes_its_root_files(tmp_path):
    # Given an index laid out as format 1 (files at the root, no commits)
    import json

    idx = tmp_path / "idx"
    build_index(write_corpus(tmp_path / "a.jsonl", {"d0": 0, "d1": 0, "d2": 0}), idx, IndexOptions(progress=False), encoder=ENCODER)
    manifest = json.loads((idx / "manifest.json").read_text())
    (segment,) = manifest.pop("segments")
    for f in (idx / segment["name"]).iterdir():
        f.rename(idx / f.name)
    shutil.rmtree(idx / "segments")
    shutil.rmtree(idx / "commits")
    (idx / "manifest.json").write_text(json.dumps({**manifest, "format_version": 1, "generation": 0}))
    # When documents are upserted and deleted
    add_documents(idx, write_corpus(tmp_path / "b.jsonl", {"d1": 2, "d3": 1}), encoder=ENCODER, progress=False)
    delete_documents(idx, ["d0"])
    # Then it equals a fresh build, its root files serving as the first segment
    _assert_equal_to_fresh(idx, {"d1": 2, "d2": 0, "d3": 1}, tmp_path)
    assert (idx / "passages.sqlite").is_file()
    # And after a compaction no root data file is left
    compact_index(idx)
    assert not (idx / "passages.sqlite").exists() and not (idx / "vectors.npy").exists()
    _assert_equal_to_fresh(idx, {"d1": 2, "d2": 0, "d3": 1}, tmp_path)
