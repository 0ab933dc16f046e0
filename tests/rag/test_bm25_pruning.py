"""MaxScore pruning is exact: the pruned top-k equals the exhaustive scan on random corpora and queries."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from indexes.bm25_store import BM25Data
from indexes.manifest import BM25Spec
from rag.bm25 import BM25Scorer
from rag.bm25_pruning import select_top_k, term_bounds

VARIANTS = ["lucene", "robertson", "atire", "bm25l", "bm25+", "okapi"]


@st.composite
def corpus_and_query(draw):
    vocab = draw(st.integers(2, 25))
    # Skewed term draws (some terms in most passages, long lists) and repeated passages (exact ties).
    word = st.integers(0, vocab - 1).map(lambda i: f"w{min(i, draw_skew(i))}")
    base = draw(st.lists(st.lists(word, min_size=0, max_size=12), min_size=1, max_size=40))
    docs = base + draw(st.lists(st.sampled_from(base), max_size=10))
    query = draw(st.lists(st.integers(0, vocab - 1).map(lambda i: f"w{i}"), min_size=1, max_size=6))
    return docs, query


def draw_skew(i: int) -> int:
    return i // 3  # folds three draws onto low ids: a Zipf-like skew without extra randomness


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(corpus_and_query(), st.sampled_from(VARIANTS), st.integers(1, 15))
def test_pruned_top_k_equals_the_exhaustive_scan(case, variant, k):
    # Given a random corpus, query (repeats allowed) and BM25 variant
    docs, query = case
    scorer = BM25Scorer(BM25Data.from_token_lists(docs), BM25Spec(variant=variant), prune_min_docs=0)
    ids = scorer.lookup(query)
    # When both paths rank
    rows, scores = scorer.top_k(ids, k)
    ref_rows, ref_scores = scorer.top_k_exhaustive(ids, k)
    # Then the same passages in the same order, and the same scores (to float rounding)
    assert rows.tolist() == ref_rows.tolist()
    np.testing.assert_allclose(scores, ref_scores, rtol=1e-12, atol=1e-12)


def test_pruning_skips_the_common_term_yet_ranks_exactly():
    # Given a rare term in 3 passages and a common one in all 200 (so MaxScore can stop early)
    docs = [["common"] * (1 + j % 3) + ["filler"] * (j % 7) for j in range(200)]
    for j in (10, 50, 150):
        docs[j] = docs[j] + ["rare"]
    scorer = BM25Scorer(BM25Data.from_token_lists(docs), BM25Spec(), prune_min_docs=0)
    ids = scorer.lookup(["rare", "common"])
    # When / Then the top 3 are the rare-term passages, as in the exhaustive scan, and all 200 match at depth 200
    rows, _ = scorer.top_k(ids, 3)
    assert sorted(rows.tolist()) == [10, 50, 150]
    assert rows.tolist() == scorer.top_k_exhaustive(ids, 3)[0].tolist()
    assert scorer.top_k(ids, 200)[0].tolist() == scorer.top_k_exhaustive(ids, 200)[0].tolist()


def test_term_bounds_by_hand():
    # Given two terms: postings weights [0.5, 2.0] and [] and [1.5]
    indptr = np.array([0, 2, 2, 3])
    weights = np.array([0.5, 2.0, 1.5])
    # When
    upper, lower = term_bounds(indptr, weights)
    # Then
    assert upper.tolist() == [2.0, 0.0, 1.5] and lower.tolist() == [0.5, 0.0, 1.5]


def test_select_top_k_breaks_ties_by_row():
    # Given scores with a three-way tie at the cut
    rows = np.array([2, 5, 7, 9, 11])
    scores = np.array([1.0, 3.0, 1.0, 1.0, 2.0])
    # When / Then
    top_rows, top_scores = select_top_k(rows, scores, 3)
    assert top_rows.tolist() == [5, 11, 2] and top_scores.tolist() == [3.0, 2.0, 1.0]
