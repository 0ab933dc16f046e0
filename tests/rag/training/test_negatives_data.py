"""Training data: validation errors, the dev split, and mined negatives that are never positives."""

from __future__ import annotations

import json

import pytest

from indexes.errors import InputError
from rag.training.data import beir_pairs, data_sha256, read_jsonl_pairs, split_dev
from rag.training.negatives import NegativeConfig, mine_negatives


def test_mined_negatives_never_include_a_positive(fixture_pairs, bm25_index, documents):
    # Given: every judged document of a query is a positive of each of its pairs
    positives = {}
    for p in fixture_pairs:
        positives.setdefault(p.query_id, set()).add(p.positive_id)

    # When
    mined = mine_negatives(fixture_pairs, bm25_index, documents, NegativeConfig(count=3, depth=20, relative_margin=0.0))

    # Then
    assert all(len(ns) == 3 and len(set(ns)) == 3 for ns in mined)
    for pair, negs in zip(fixture_pairs, mined):
        assert not set(negs) & positives[pair.query_id]
        assert set(negs) <= set(documents)


def test_false_negative_guard_drops_candidates_scoring_near_the_positive(fixture_pairs, bm25_index, documents):
    """With margin m, a BM25 candidate is kept only if s(q, d) < s(q, p+) − m·s(q, p+)."""
    # Given
    config = NegativeConfig(count=1, depth=20, relative_margin=0.5)
    rows_of = {d: r for r, d in enumerate(bm25_index.store.doc_ids())}

    # When
    mined = mine_negatives(fixture_pairs, bm25_index, documents, config)

    # Then: every negative BM25 actually ranked scores below half the positive's score
    for pair, (neg,) in zip(fixture_pairs, mined):
        rows, scores = bm25_index.bm25.rank(pair.query, 20)
        ranked = dict(zip(rows.tolist(), scores.tolist()))
        s_pos = float(bm25_index.bm25.score_rows(pair.query, [rows_of[pair.positive_id]])[0])
        if rows_of[neg] in ranked:
            assert ranked[rows_of[neg]] < 0.5 * s_pos


def test_qrels_ids_missing_from_queries_or_corpus_are_named():
    # Given
    queries, docs = {"q1": "a query"}, {"d1": "a document"}

    # When / Then
    with pytest.raises(InputError, match="query ids are not in the queries file.*'q2'"):
        beir_pairs(queries, {"q2": {"d1": 1}}, docs)
    with pytest.raises(InputError, match="document ids are not in the corpus.*'d9'"):
        beir_pairs(queries, {"q1": {"d9": 1}}, docs)
    with pytest.raises(InputError, match="nothing to train on"):
        beir_pairs(queries, {"q1": {"d1": 0}}, docs)


def test_jsonl_pairs_must_be_non_empty_and_rectangular(tmp_path):
    # Given
    ragged = tmp_path / "ragged.jsonl"
    ragged.write_text(json.dumps({"query": "q", "positive": "p", "negative": "n"}) + "\n"
                      + json.dumps({"query": "q2", "positive": "p2"}) + "\n")
    empty_text = tmp_path / "empty.jsonl"
    empty_text.write_text(json.dumps({"query": "q", "positive": " "}) + "\n")

    # When / Then
    with pytest.raises(InputError, match="different numbers of negatives"):
        read_jsonl_pairs(ragged)
    with pytest.raises(InputError, match=r"empty.jsonl:1: .*non-empty"):
        read_jsonl_pairs(empty_text)


def test_dev_split_holds_out_whole_queries(fixture_pairs):
    # When
    train, dev = split_dev(fixture_pairs, 0.25, seed=0)

    # Then
    assert {p.query_id for p in train}.isdisjoint({p.query_id for p in dev})
    assert len(train) + len(dev) == len(fixture_pairs)
    assert len({p.query_id for p in dev}) == round(0.25 * len({p.query_id for p in fixture_pairs}))
    assert data_sha256(train) != data_sha256(dev)


def test_dense_mined_negatives_never_include_a_positive(fixture_pairs, sample_index, documents):
    from rag.index import open_index

    # Given: the fixture corpus indexed with the embedded MiniLM (BM25 + dense)
    index = open_index(sample_index)
    positives = {}
    for p in fixture_pairs:
        positives.setdefault(p.query_id, set()).add(p.positive_id)

    # When
    mined = mine_negatives(fixture_pairs, index, documents, NegativeConfig(count=2, source="dense"))
    index.close()

    # Then
    assert all(len(ns) == 2 and not set(ns) & positives[p.query_id] for p, ns in zip(fixture_pairs, mined))
