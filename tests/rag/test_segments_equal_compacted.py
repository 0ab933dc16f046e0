"""A commit of many unmerged segments searches exactly as the same commit compacted into one.

The reader of an N-segment commit merges the segments' live passages in memory (BM25 counts,
dense vectors, passage rows in document-id order); compaction writes that same merge to disk.
So on a corpus whose base segment carries tombstones (upserted and deleted documents), every
query's top ``k`` over the segments equals the compacted index's: passage ids, BM25 scores
(≤ 1e-9), dense flat scores, the passages read back for the hits, and the same under a metadata
filter. Also, the one-pass numpy merge of BM25 postings equals the scipy append/select path.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from tests.rag.live_helpers import HashEncoder, meta_of, text_of

from indexes.bm25_store import BM25Data, BM25Postings
from rag.index import open_index
from rag.indexer import IndexOptions, build_index
from rag.live import add_documents, compact_index, delete_documents

ENCODER = HashEncoder()
QUERIES = ["virus vaccine", "blue sky light", "salt ocean storm rain", "gene cell protein", "protein", "rain rain"]
FILTERS = [{"source": "a"}, {"year": {"$gte": 2002}}, {"$or": [{"source": "c"}, {"open": True}]}]


def _write(path, docs: dict[str, int]):
    path.write_text("".join(json.dumps({"_id": d, "title": "", "text": text_of(d, v)} | meta_of(d, v)) + "\n"
                            for d, v in docs.items()))
    return path


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """(segmented, compacted): a 40-document base, 8 upserts of 3 documents (two of them replacing base
    documents: tombstones), one delete, and a copy of that commit compacted."""
    work = tmp_path_factory.mktemp("segments")
    seg = work / "seg"
    build_index(_write(work / "base.jsonl", {f"d{i:02d}": 0 for i in range(40)}), seg, IndexOptions(progress=False),
                encoder=ENCODER)
    for n in range(8):
        batch = {f"d{(5 * n + j) % 40:02d}": n + 1 for j in range(2)} | {f"n{n}": 1}  # 2 replaced, 1 new
        add_documents(seg, _write(work / f"u{n}.jsonl", batch), encoder=ENCODER, progress=False)
    delete_documents(seg, ["d07", "d33", "n2"])
    comp = work / "comp"
    shutil.copytree(seg, comp)
    compact_index(comp)
    a, b = open_index(seg, encoder=ENCODER), open_index(comp, encoder=ENCODER)
    yield a, b
    a.close()
    b.close()


def test_the_fixture_has_segments_with_tombstones(pair):
    segmented, compacted = pair
    assert len(segmented.manifest.segments) == 9 and len(compacted.manifest.segments) == 1
    assert any(s.n_deleted for s in segmented.manifest.segments)
    assert segmented.store.ids() == compacted.store.ids()


@pytest.mark.parametrize("k", [1, 5, 20, 200])
def test_bm25_top_k_equals_the_compacted_index(pair, k):
    # Given the same commit, unmerged and compacted
    segmented, compacted = pair
    for q in QUERIES:
        # When both rank the query
        (r1, s1), (r2, s2) = segmented.bm25.rank(q, k), compacted.bm25.rank(q, k)
        # Then the same passages, the same scores
        assert [p.id for p in segmented.store.get(r1.tolist())] == [p.id for p in compacted.store.get(r2.tolist())]
        np.testing.assert_allclose(s1, s2, rtol=0, atol=1e-9)


@pytest.mark.parametrize("k", [1, 5, 20, 200])
def test_dense_flat_top_k_equals_the_compacted_index(pair, k):
    segmented, compacted = pair
    vectors = ENCODER.encode_queries(QUERIES)
    for (r1, s1), (r2, s2) in zip(segmented.dense.rank_vectors(vectors, k), compacted.dense.rank_vectors(vectors, k)):
        np.testing.assert_array_equal(r1, r2)
        np.testing.assert_array_equal(s1, s2)


@pytest.mark.parametrize("mode", ["bm25", "dense", "hybrid"])
@pytest.mark.parametrize("spec", [None, *FILTERS])
def test_hits_read_from_the_segments_equal_the_compacted_index(pair, mode, spec):
    # Given a search that reads its hits' passages back (from several segments' stores)
    segmented, compacted = pair
    for q in QUERIES:
        # When both indexes answer it, filtered or not
        h1 = segmented.retriever(mode).search(q, 30, segmented.where(spec))
        h2 = compacted.retriever(mode).search(q, 30, compacted.where(spec))
        # Then the same hits: ids, documents, texts, metadata and scores
        assert [(h.id, h.doc_id, h.text, h.metadata) for h in h1] == [(h.id, h.doc_id, h.text, h.metadata) for h in h2]
        np.testing.assert_allclose([h.score for h in h1], [h.score for h in h2], rtol=0, atol=1e-9)


def test_rows_and_metadata_of_the_segmented_store_follow_global_rows(pair):
    segmented, compacted = pair
    ids = compacted.store.ids()
    wanted = ids[::-3] + ["no-such-passage"]
    assert segmented.store.rows_of(wanted) == compacted.store.rows_of(wanted) == [ids.index(i) for i in wanted[:-1]] + [None]
    assert segmented.store.doc_ids() == compacted.store.doc_ids()
    assert segmented.store.metadata() == compacted.store.metadata()
    rows = [len(ids) - 1, 0, 17, 17, 3]  # any order, repeats kept
    assert segmented.store.get(rows) == compacted.store.get(rows)


def test_numpy_merge_of_postings_equals_scipy_append_then_select(tmp_path):
    # Given three small corpora and a target order that drops some passages and interleaves the rest
    rng = np.random.default_rng(5)
    words = [f"w{i}" for i in range(30)]
    corpora = [[list(rng.choice(words, size=int(rng.integers(0, 8)))) for _ in range(n)] for n in (12, 5, 9)]
    datas = [BM25Data.from_token_lists(c) for c in corpora]
    sizes = [d.n_docs for d in datas]
    alive = rng.random(sum(sizes)) < 0.7  # over the concatenated passages
    columns = rng.permutation(np.flatnonzero(alive))  # result row j <- concatenated passage columns[j]
    # When merged with numpy (each part told the result row of each of its passages) and with scipy
    target = np.full(sum(sizes), -1, np.int64)
    target[columns] = np.arange(columns.size)
    bounds = np.cumsum([0, *sizes])
    for i, d in enumerate(datas):
        d.write(tmp_path / f"p{i}" if (tmp_path / f"p{i}").mkdir() is None else None)
    parts = [BM25Postings.read(tmp_path / f"p{i}") for i in range(len(datas))]
    merged = BM25Postings.merge(parts, [target[lo:hi] for lo, hi in zip(bounds[:-1], bounds[1:])], int(columns.size))
    whole = datas[0].append(datas[1]).append(datas[2]).select(columns)
    # Then the same vocabulary (order included), postings and lengths
    assert merged.vocab == whole.vocab
    np.testing.assert_array_equal(merged.indptr, whole.tf.indptr)
    np.testing.assert_array_equal(merged.indices, whole.tf.indices)
    np.testing.assert_array_equal(merged.tf, whole.tf.data)
    np.testing.assert_array_equal(merged.doc_lengths, whole.doc_lengths)

