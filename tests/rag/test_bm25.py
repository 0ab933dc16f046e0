"""BM25 scoring: hand-worked examples, parity with rank-bm25, fast path == reference.

Updates == rebuild and the disk round trip of the statistics are in tests/indexes/test_bm25_store.py."""

from __future__ import annotations

import math

import numpy as np
import pytest
from rank_bm25 import BM25Okapi, BM25Plus

from indexes.bm25_store import BM25Data
from indexes.manifest import BM25Spec
from rag.bm25 import BM25Scorer

DOCS = [["cat", "sat", "mat"], ["dog", "sat", "log", "dog"], ["cat", "dog"]]


def random_corpus(seed: int, n_docs: int = 60, vocab: int = 40) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(vocab)]
    # Zipf-like draw so some terms occur in more than half the documents (negative Robertson idf).
    p = 1.0 / np.arange(1, vocab + 1)
    p /= p.sum()
    return [list(rng.choice(words, size=rng.integers(1, 30), p=p)) for _ in range(n_docs)]


def test_lucene_three_documents_by_hand():
    """Query "dog" with lucene BM25, k1=1.2, b=0.75.

    N=3, df(dog)=2 → idf = ln(1 + (3-2+.5)/(2+.5)) = ln(1.6) = 0.470004.
    avgdl = (3+4+2)/3 = 3.
    doc 1: tf=2, dl=4 → norm = .25+.75·4/3 = 1.25; tfc = 2/(2+1.2·1.25) = 0.571429 → 0.268574
    doc 2: tf=1, dl=2 → norm = .25+.75·2/3 = 0.75; tfc = 1/(1+1.2·0.75) = 0.526316 → 0.247371
    """
    # Given
    data = BM25Data.from_token_lists(DOCS)
    scorer = BM25Scorer(data, BM25Spec(variant="lucene", k1=1.2, b=0.75))
    # When
    scores = scorer.scores(scorer.lookup(["dog"]))
    # Then
    idf = math.log(1.6)
    assert scores == pytest.approx([0.0, idf * 2 / 3.5, idf * 1 / 1.9], abs=1e-12)
    assert scores[1] == pytest.approx(0.268574, abs=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(
    "variant, reference, kwargs",
    [("okapi", BM25Okapi, dict(k1=1.5, b=0.75, epsilon=0.25)),
     ("bm25+", BM25Plus, dict(k1=1.5, b=0.75, delta=1.0))],
)
def test_scores_equal_rank_bm25(seed, variant, reference, kwargs):
    # Given the same tokens for both implementations
    corpus = random_corpus(seed)
    oracle = reference(corpus, **kwargs)
    scorer = BM25Scorer(BM25Data.from_token_lists(corpus), BM25Spec(variant=variant, **kwargs))
    rng = np.random.default_rng(100 + seed)
    for _ in range(20):
        query = [f"w{i}" for i in rng.integers(0, 45, size=rng.integers(1, 6))]  # some out of vocabulary
        # When
        ours = scorer.scores(scorer.lookup(query))
        # Then
        np.testing.assert_allclose(ours, oracle.get_scores(query), rtol=0, atol=1e-6)


def test_bm25l_by_hand():
    """BM25L (Lv & Zhai, CIKM 2011), query "cat", k1=1.2, b=0.75, δ=0.5.

    (rank-bm25's BM25L multiplies by an extra tf, so it is no oracle for this variant.)
    N=3, df(cat)=2 → idf = ln(4/2.5) = 0.470004; avgdl = 3.
    doc 0: tf=1, dl=3 → c = 1/1 = 1;    tfc = 2.2·1.5/(1.2+1.5) = 1.222222
    doc 1: tf=0       → c = 0;          tfc = 2.2·0.5/(1.2+0.5) = 0.647059 (every passage gets it)
    doc 2: tf=1, dl=2 → c = 1/.75;      tfc = 2.2·(4/3+.5)/(1.2+4/3+.5) = 1.331502
    """
    scorer = BM25Scorer(BM25Data.from_token_lists(DOCS), BM25Spec(variant="bm25l", k1=1.2, b=0.75, delta=0.5))
    idf = math.log(4 / 2.5)
    expected = [idf * 2.2 * 1.5 / 2.7, idf * 2.2 * 0.5 / 1.7, idf * 2.2 * (4 / 3 + 0.5) / (1.2 + 4 / 3 + 0.5)]
    assert scorer.scores(scorer.lookup(["cat"])) == pytest.approx(expected, abs=1e-12)


def test_okapi_floor_applies_to_negative_idf():
    # Given a term in 3 of 4 documents: Robertson idf = ln(1.5/3.5) < 0
    corpus = [["a", "b"], ["a"], ["a", "c"], ["d"]]
    scorer = BM25Scorer(BM25Data.from_token_lists(corpus), BM25Spec(variant="okapi", k1=1.5, b=0.75, epsilon=0.25))
    # When
    scores = scorer.scores(scorer.lookup(["a"]))
    # Then every matching document scores > 0 (the idf was floored to ε·mean idf, which is > 0 here)
    assert (scores[:3] > 0).all() and scores[3] == 0


@pytest.mark.parametrize("variant", ["lucene", "robertson", "atire", "bm25l", "bm25+", "okapi"])
def test_top_k_equals_full_ranking(variant):
    # Given
    corpus = random_corpus(7, n_docs=200)
    scorer = BM25Scorer(BM25Data.from_token_lists(corpus), BM25Spec(variant=variant))
    for query in (["w1"], ["w3", "w0", "w3"], ["w10", "w20", "w39"]):
        ids = scorer.lookup(query)
        # When
        rows, top = scorer.top_k(ids, 10)
        # Then: same scores as the reference path, sorted, ties by row
        full = scorer.scores(ids)
        np.testing.assert_allclose(top, full[rows], atol=1e-9)
        matching = np.flatnonzero(np.isin(np.arange(len(corpus)), [j for j, d in enumerate(corpus) if set(d) & set(query)]))
        expected = sorted(matching, key=lambda j: (-full[j], j))[:10]
        assert rows.tolist() == expected


def test_unknown_terms_give_no_results():
    scorer = BM25Scorer(BM25Data.from_token_lists(DOCS), BM25Spec())
    rows, scores = scorer.top_k(scorer.lookup(["zebra"]), 5)
    assert rows.size == 0 and scores.size == 0


def test_ties_at_the_cut_go_to_the_lowest_rows():
    # Given 30 identical documents: every one ties
    scorer = BM25Scorer(BM25Data.from_token_lists([["x", "y"]] * 30 + [["z"]]), BM25Spec())
    # When
    rows, scores = scorer.top_k(scorer.lookup(["x"]), 7)
    # Then the first seven rows, never the non-matching one
    assert rows.tolist() == list(range(7)) and len(set(scores.tolist())) == 1
    rows, _ = scorer.top_k(scorer.lookup(["x"]), 100)
    assert rows.tolist() == list(range(30))


def test_no_query_terms_in_the_vocabulary_scores_every_passage_at_its_floor():
    # Given a query none of whose terms were indexed (the hybrid retriever still asks for scores)
    scorer = BM25Scorer(BM25Data.from_token_lists(DOCS), BM25Spec())
    ids = scorer.lookup(["zebra", "quux"])
    # When / Then
    assert ids.size == 0
    assert scorer.scores(ids).tolist() == [0.0, 0.0, 0.0]
