"""Metadata filters as Milvus expressions: hand-worked translations, and the engine's filtered
search equals filtering every passage by the reference :func:`indexes.milvus_filter.matches`."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tests.rag.live_helpers import HashEncoder, text_of

from indexes.manifest import MilvusSpec, VectorBackendSpec
from indexes.milvus_filter import And, Eq, In, Or, Range, matches, to_milvus


@pytest.mark.parametrize("f, expr", [
    (Eq("lang", "en"), 'meta["lang"] == "en"'),
    (Eq("year", 2020), 'meta["year"] == 2020'),
    (Eq("open", False), 'meta["open"] == false'),
    (Eq('we"ird', 'a "quoted" \\ value'), 'meta["we\\"ird"] == "a \\"quoted\\" \\\\ value"'),
    (In("lang", ("en", "de")), '(meta["lang"] == "en" or meta["lang"] == "de")'),
    (Range("year", ge=2000, lt=2010), 'meta["year"] >= 2000 and meta["year"] < 2010'),
    (Range("score", gt=0.5), 'meta["score"] > 0.5'),
    (Or((Eq("a", 1), And((Eq("b", 2), Eq("c", 3))))), '(meta["a"] == 1) or ((meta["b"] == 2) and (meta["c"] == 3))'),
])
def test_translation(f, expr):
    assert to_milvus(f) == expr


@pytest.mark.parametrize("f", [In("x", ()), Range("x"), And(()), Eq("x", float("nan")), Eq("", 1), Eq("x", [1])])
def test_malformed_filters_are_refused(f):
    with pytest.raises(ValueError):
        to_milvus(f)


def test_reference_semantics():
    # JSON equality: 1 == 1.0, but true is not 1; a missing field never matches
    assert matches(Eq("y", 1), {"y": 1.0}) and not matches(Eq("y", 1), {"y": True}) and not matches(Eq("y", 1), {})
    assert matches(Range("y", ge=1, le=1), {"y": 1}) and not matches(Range("y", ge=1), {"y": "2"})


FILTERS = [Eq("lang", "en"), In("lang", ("de", "fr")), Range("year", ge=2005, lt=2015),
           Or((Eq("lang", "de"), And((Eq("lang", "en"), Range("year", gt=2010))))), Eq("open", True)]


@pytest.fixture(scope="module")
def milvus_index(tmp_path_factory):
    pytest.importorskip("pymilvus", reason="pymilvus not installed (pip install 'rag-toolkit[scale]')")
    pytest.importorskip("milvus_lite", reason="milvus-lite not installed (pip install 'rag-toolkit[scale]')")
    from rag.indexer import IndexOptions, build_index

    work = tmp_path_factory.mktemp("filters")
    rng = np.random.default_rng(7)
    docs = [{"_id": f"d{i:02d}", "title": "", "text": text_of(f"d{i}", 0),
             "metadata": {"lang": str(rng.choice(["en", "de", "fr"])), "year": int(rng.integers(2000, 2020)),
                          **({"open": bool(rng.integers(2))} if i % 3 else {})}} for i in range(30)]
    (work / "c.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    opts = IndexOptions(progress=False, backend=VectorBackendSpec(library="milvus"),
                        engine=MilvusSpec(uri=str(work / "lite.db"), collection="filters"))
    build_index(work / "c.jsonl", work / "index", opts, encoder=HashEncoder())
    return work / "index"


@pytest.mark.parametrize("f", FILTERS, ids=[to_milvus(f)[:40] for f in FILTERS])
def test_filtered_search_is_the_top_k_of_the_matching_passages(milvus_index, f):
    from rag.index import open_index

    # Given the index and, as reference, every passage's exact scores filtered in Python
    index = open_index(milvus_index, encoder=HashEncoder())
    try:
        meta = [p.metadata for p in index.store.iter_all()]
        keep = np.array([matches(f, m) for m in meta])
        v = HashEncoder().encode_queries(["virus vaccine sky"])
        exact = index.dense.score_rows(v[0], np.arange(len(meta)))
        want = [r for r in np.lexsort((np.arange(len(meta)), -exact)) if keep[r]][:5]
        # When the engine searches with the filter pushed down
        scores, rows = index.dense.dense.search(v, 5, where=f)
        # Then it finds exactly the best matching passages
        assert rows[0][rows[0] >= 0].tolist() == want
        bm = index.bm25.engine
        qv = index.bm25.query_vector("virus vaccine sky")
        got, _ = bm.top_k(qv, 100, where=f)
        all_rows, _ = bm.top_k(qv, 100)
        assert sorted(got.tolist()) == sorted(r for r in all_rows.tolist() if keep[r])
    finally:
        index.close()
