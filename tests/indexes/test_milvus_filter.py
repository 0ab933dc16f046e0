"""Metadata filters as Milvus expressions: hand-worked translations of the canonical
:mod:`indexes.filters` tree, and the engine selecting exactly the rows of the local mask
(:class:`indexes.filters.MetadataColumns`) on values where JSON comparison is easy to get wrong:
``true`` vs ``1``, ``1`` vs ``1.0``, null, missing, lists, integers beyond 2**53, code point order,
quotes, backslashes and control characters."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tests.rag.live_helpers import HashEncoder

from indexes.filters import And, Condition, MetadataColumns, Or, parse_filter
from indexes.manifest import MilvusSpec, VectorBackendSpec
from indexes.milvus_filter import engine_meta, to_milvus


@pytest.mark.parametrize("spec, expr", [
    ({"lang": "en"}, 'meta["str"]["lang"] == "en"'),
    ({"year": 2020}, 'meta["num"]["year"] == 2020.0'),
    ({"open": False}, 'meta["bool"]["open"] == false'),
    ({'we"ird': 'a "quoted" \\ value\nline'}, 'meta["str"]["we\\"ird"] == "a \\"quoted\\" \\\\ value\\nline"'),
    ({"lang": {"$in": ["en", 1]}}, '(meta["str"]["lang"] == "en" or meta["num"]["lang"] == 1.0)'),
    ({"year": {"$gte": 2000, "$lt": 2010.5}}, '(meta["num"]["year"] >= 2000.0) and (meta["num"]["year"] < 2010.5)'),
    ({"date": {"$gt": "2019-01"}}, 'meta["str"]["date"] > "2019-01"'),
    ({"$or": [{"a": 1}, {"b": 2, "c": True}]},
     '(meta["num"]["a"] == 1.0) or ((meta["num"]["b"] == 2.0) and (meta["bool"]["c"] == true))'),
])
def test_translation(spec, expr):
    # Given a filter in the JSON syntax of the CLI and REST / When translated / Then the hand-written expression
    assert to_milvus(parse_filter(spec)) == expr


def test_engine_meta_is_a_typed_projection_of_the_passage_metadata():
    # Given metadata with every JSON type / When projected / Then numbers are floats, null/list/object dropped
    got = engine_meta({"y": 2010, "f": 1.5, "t": True, "s": "x", "n": None, "l": [1], "o": {"a": 1}, "big": 10**400})
    assert got == {"num": {"y": 2010.0, "f": 1.5}, "bool": {"t": True}, "str": {"s": "x"}}
    assert isinstance(got["num"]["y"], float) and engine_meta(None) == engine_meta({}) == {}


@pytest.mark.parametrize("f", [Condition("x", "in", ()), And(()), Or(()), Condition("x", "eq", float("nan")),
                               Condition("", "eq", 1), Condition("x", "eq", [1])])
def test_malformed_trees_are_refused(f):
    with pytest.raises(ValueError):
        to_milvus(f)


TRICKY = [  # y: the values JSON comparison confuses; s: strings in code point order and escapes
    {"y": 1, "s": "B"}, {"y": 1.0, "s": "b"}, {"y": True, "s": "é"}, {"y": "1", "s": "\U0001F600"}, {"y": None, "s": "a\"b"},
    {"s": "a\\b"}, {"y": 0, "s": "tab\there"}, {"y": False, "s": "new\nline"}, {"y": [1], "s": "cr\rx"}, {"y": {"a": 1}, "s": "a\x01b"},
    {"y": 2**53 + 1, "s": "ab"}, {"y": 2010.5, "s": "a"}, {"y": -3, "s": ""},
]
SPECS = [
    {"y": 1}, {"y": 1.0}, {"y": True}, {"y": False}, {"y": 0}, {"y": "1"}, {"y": {"$gte": 1}}, {"y": {"$lt": 1}},
    {"y": {"$in": [True, 0]}}, {"y": 2**53}, {"y": {"$gt": 2**53 - 1}}, {"y": {"$lte": -2.5}},
    {"s": {"$gt": "a"}}, {"s": {"$lt": "é"}}, {"s": {"$gte": "B", "$lt": "b"}}, {"s": {"$gt": "é"}}, {"s": "a\"b"},
    {"s": "a\\b"}, {"s": "tab\there"}, {"s": "new\nline"}, {"s": "cr\rx"}, {"s": "a\x01b"}, {"s": {"$lte": ""}},
    {"$or": [{"y": True}, {"s": {"$in": ["ab", "B"]}}]},
]


@pytest.fixture(scope="module")
def tricky_index(tmp_path_factory):
    pytest.importorskip("pymilvus", reason="pymilvus not installed (pip install 'rag-toolkit[scale]')")
    pytest.importorskip("milvus_lite", reason="milvus-lite not installed (pip install 'rag-toolkit[scale]')")
    from rag.index import open_index
    from rag.indexer import IndexOptions, build_index

    work = tmp_path_factory.mktemp("filters")
    docs = [{"_id": f"d{i:02d}", "title": "", "text": "virus vaccine sky", "metadata": m} for i, m in enumerate(TRICKY)]
    (work / "c.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    opts = IndexOptions(progress=False, backend=VectorBackendSpec(library="milvus"),
                        engine=MilvusSpec(uri=str(work / "lite.db"), collection="filters"))
    build_index(work / "c.jsonl", work / "index", opts, encoder=HashEncoder())
    index = open_index(work / "index", encoder=HashEncoder())
    yield index
    index.close()


@pytest.mark.parametrize("spec", SPECS, ids=[json.dumps(s)[:40] for s in SPECS])
def test_the_engine_selects_the_rows_of_the_local_mask(tricky_index, spec):
    # Given the local mask over the passage store's metadata (the canonical semantics)
    f = parse_filter(spec)
    want = np.flatnonzero(MetadataColumns(tricky_index.store.metadata()).mask(f)).tolist()
    where = tricky_index.where(f)
    v = HashEncoder().encode_queries(["virus"])
    # When the dense and the BM25 search of the engine get the filter pushed down, asked for every row
    _, rows = tricky_index.dense.dense.search(v, len(TRICKY), where)
    bm25_rows, _ = tricky_index.bm25.engine.top_k(tricky_index.bm25.query_vector("virus"), len(TRICKY), where)
    # Then both return exactly the rows of the mask
    assert sorted(rows[0][rows[0] >= 0].tolist()) == want
    assert sorted(bm25_rows.tolist()) == want
