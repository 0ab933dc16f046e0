"""Filtered search equals brute-force filtering of the unfiltered exhaustive ranking.

On random small corpora with metadata, before and after upserts/deletes/compaction: BM25 (a
mask over rows) and dense flat (a FAISS ID selector) give, for any filter, exactly the first
``k`` rows of the full unfiltered ranking that satisfy the filter — the filter is applied before
the top-k cut, never after it. The predicate here is evaluated directly on the JSON metadata,
independently of :class:`indexes.filters.MetadataColumns`.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.rag.live_helpers import HashEncoder, text_of

from indexes.errors import InputError
from indexes.manifest import VectorBackendSpec
from rag.index import open_index
from rag.indexer import IndexOptions, build_index
from rag.live import add_documents, compact_index, delete_documents

ENCODER = HashEncoder()
QUERIES = ["virus vaccine", "blue sky light", "salt ocean storm rain", "gene cell protein", "protein"]
SOURCES = ["a", "b", "c"]


def _meta(rng: random.Random) -> dict:
    """Random metadata: year (int, sometimes a float or a string), source, open; fields sometimes absent."""
    m = {}
    if rng.random() < 0.9:
        m["year"] = rng.choice([rng.randint(2000, 2005), rng.randint(2000, 2005) + 0.5, "n/a"] if rng.random() < 0.2
                               else [rng.randint(2000, 2005)])
    if rng.random() < 0.9:
        m["source"] = rng.choice(SOURCES)
    if rng.random() < 0.7:
        m["open"] = rng.random() < 0.5
    return m


def _write(path: Path, docs: dict[str, tuple[int, dict]]) -> Path:
    # Metadata as top-level JSONL fields for half the documents, as a "metadata" object for the others.
    lines = []
    for i, (d, (v, m)) in enumerate(docs.items()):
        rec = {"_id": d, "title": "", "text": text_of(d, v)}
        lines.append(json.dumps(rec | m if i % 2 else rec | {"metadata": m}))
    path.write_text("\n".join(lines) + "\n")
    return path


def _kind(v):
    return None if v is None else "bool" if isinstance(v, bool) else "number" if isinstance(v, (int, float)) else "string"


def matches(meta: dict, f: dict) -> bool:
    """The filter semantics of the README, written out directly."""
    out = True
    for key, value in f.items():
        if key == "$and":
            out &= all(matches(meta, g) for g in value)
        elif key == "$or":
            out &= any(matches(meta, g) for g in value)
        else:
            ops = value if isinstance(value, dict) else {"$eq": value}
            x = meta.get(key)
            for op, v in ops.items():
                vals = v if op == "$in" else [v]
                if op in ("$eq", "$in"):
                    out &= any(_kind(x) == _kind(u) and x == u for u in vals)
                else:
                    ok = _kind(x) == _kind(v) and {"$gt": x > v, "$gte": x >= v, "$lt": x < v, "$lte": x <= v}[op] \
                        if _kind(x) == _kind(v) else False
                    out &= ok
    return out


scalar_year = st.integers(1999, 2006)
conditions = st.one_of(
    st.builds(lambda y: {"year": y}, scalar_year),
    st.builds(lambda lo, hi: {"year": {"$gte": lo, "$lt": hi}}, scalar_year, scalar_year),
    st.builds(lambda y: {"year": {"$gt": y + 0.25}}, scalar_year),
    st.builds(lambda s: {"source": s}, st.sampled_from(SOURCES)),
    st.builds(lambda s: {"source": {"$in": s}}, st.lists(st.sampled_from(SOURCES + ["zz"]), min_size=1, max_size=3)),
    st.builds(lambda s: {"source": {"$lte": s}}, st.sampled_from(["a", "b", "bb", "c"])),
    st.builds(lambda b: {"open": b}, st.booleans()),
)
filters = st.one_of(
    conditions,
    st.builds(lambda xs: {"$and": xs}, st.lists(conditions, min_size=1, max_size=3)),
    st.builds(lambda xs: {"$or": xs}, st.lists(conditions, min_size=1, max_size=3)),
    st.builds(lambda a, b: a | b, conditions, conditions),
)


def _corpus(seed: int, n: int = 30) -> dict[str, tuple[int, dict]]:
    rng = random.Random(seed)
    return {f"d{i:02d}": (rng.randint(0, 3), _meta(rng)) for i in range(n)}


@pytest.fixture(scope="module", params=["fresh", "after-changes", "compacted"])
def live(request, tmp_path_factory):
    """An index of a random corpus, as built, or after upserts (new metadata) and deletes, or compacted;
    and the corpus it should hold ``{doc_id: (version, metadata)}``."""
    work = tmp_path_factory.mktemp(request.param)
    corpus = _corpus(7)
    build_index(_write(work / "c.jsonl", corpus), work / "idx", IndexOptions(progress=False), encoder=ENCODER)
    if request.param != "fresh":
        rng = random.Random(11)
        upserts = {f"d{i:02d}": (rng.randint(0, 3), _meta(rng)) for i in list(range(0, 30, 4)) + [30, 31, 32]}
        add_documents(work / "idx", _write(work / "u.jsonl", upserts), encoder=ENCODER, progress=False)
        corpus.update(upserts)
        delete_documents(work / "idx", ["d03", "d05", "d31"])
        for d in ("d03", "d05", "d31"):
            corpus.pop(d)
        add_documents(work / "idx", _write(work / "v.jsonl", {"d40": (1, {"year": 2003, "source": "b"})}),
                      encoder=ENCODER, progress=False)
        corpus["d40"] = (1, {"year": 2003, "source": "b"})
        if request.param == "compacted":
            compact_index(work / "idx")
    index = open_index(work / "idx", encoder=ENCODER)
    yield index, corpus
    index.close()


def test_metadata_of_every_passage_survives_changes(live):
    # Given the index and the corpus it should hold / Then every passage carries its document's metadata
    index, corpus = live
    for p, meta in zip(index.store.get(range(len(index.store))), index.store.metadata()):
        assert p.metadata == meta == corpus[p.doc_id][1]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(f=filters, q=st.sampled_from(QUERIES), k=st.integers(1, 12))
def test_filtered_bm25_and_dense_equal_brute_force(live, f, q, k):
    # Given the index and a filter on fields every document may hold
    index, _ = live
    metas = index.store.metadata()
    allowed = np.array([matches(m, f) for m in metas])
    where = index.where(f)
    assert where.mask.tolist() == allowed.tolist()
    # When BM25 ranks with the filter / Then its rows and scores are the first k allowed rows of the full ranking
    bm25 = index.bm25
    full_rows, full_scores = bm25.scorer.top_k_exhaustive(bm25.terms(q), len(metas))
    keep = allowed[full_rows]
    rows, scores = bm25.rank(q, k, where)
    assert rows.tolist() == full_rows[keep][:k].tolist()
    assert scores.tolist() == full_scores[keep][:k].tolist()
    # When dense flat ranks with the filter / Then the same holds (exact search under the ID selector)
    (full_rows, full_scores), = index.dense.rank_batch([q], len(metas))
    (rows, scores), = index.dense.rank_batch([q], k, where)
    keep = allowed[full_rows]
    assert rows.tolist() == full_rows[keep][:k].tolist()
    np.testing.assert_allclose(scores, full_scores[keep][:k], atol=1e-6)
    # And hybrid fuses only allowed rows
    hits = index.retriever("hybrid").search(q, k, where)
    assert all(matches(h.metadata, f) for h in hits)


def test_hand_worked_bm25_filter_cuts_after_filtering(tmp_path):
    # Given: three documents, the best match for "salt" is from 2001, the two others from 2010
    (tmp_path / "c.jsonl").write_text(
        '{"_id": "a", "text": "salt salt salt", "year": 2001}\n'
        '{"_id": "b", "text": "salt ocean", "year": 2010}\n'
        '{"_id": "c", "text": "salt ocean rain storm", "year": 2010}\n')
    build_index(tmp_path / "c.jsonl", tmp_path / "idx", IndexOptions(encoder=None, progress=False))
    index = open_index(tmp_path / "idx")
    # When: top-1 with year >= 2005
    hits = index.retriever("bm25").search("salt", 1, index.where({"year": {"$gte": 2005}}))
    # Then: b (the best of the allowed ones), not "nothing" (filtering the unfiltered top-1 would leave no hit)
    assert [h.id for h in hits] == ["b"] and hits[0].metadata == {"year": 2010}
    # And: a filter nothing satisfies gives no hits; a field nobody has is refused
    assert index.retriever("bm25").search("salt", 3, index.where({"year": 1999})) == []
    with pytest.raises(InputError, match="unknown metadata field 'yr'"):
        index.where({"yr": 1})
    index.close()


@pytest.mark.parametrize("kind", ["hnsw", "ivfpq"])
def test_approximate_structures_under_filters(tmp_path, kind):
    # Given: an HNSW or IVF-PQ index of 300 random documents, its vectors also searched flat
    from indexes.dense_store import DenseStore

    rng = random.Random(3)
    docs = {f"d{i:03d}": (rng.randint(0, 3), _meta(rng)) for i in range(300)}
    backend = VectorBackendSpec(kind=kind, ivf_nlist=4, pq_m=4, ivf_nprobe=1) if kind == "ivfpq" else VectorBackendSpec(kind=kind)
    build_index(_write(tmp_path / "c.jsonl", docs), tmp_path / "idx", IndexOptions(progress=False, backend=backend),
                encoder=ENCODER)
    index = open_index(tmp_path / "idx", encoder=ENCODER)
    store = index.dense.dense
    flat = DenseStore.from_arrays(store.vectors, store.passage_of_row, VectorBackendSpec(kind="flat"))
    f = {"source": "b", "year": {"$lte": 2002}}
    where = index.where(f)
    Q = ENCODER.encode_queries(QUERIES)
    want = flat.search(Q, 10, where)
    # When: the filter allows few vectors (below exact_filter_max_vectors) / Then: the search is exact
    got = store.search(Q, 10, where)
    assert got[1].tolist() == want[1].tolist()
    np.testing.assert_allclose(got[0], want[0], atol=1e-5)
    # When: FAISS's selector alone is used / Then: only allowed passages, and with the fallback always k of them
    store.exact_filter_max_vectors = 0
    for fallback in (False, True):
        store.filter_fallback = fallback
        _, rows = store.search(Q, 10, where)
        found = [r[r >= 0] for r in rows]
        assert all(where.mask[r].all() for r in found)
        if fallback:
            assert all(r.size == min(10, where.count) for r in found)
    index.close()
