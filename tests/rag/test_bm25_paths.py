"""What "the same results" means for BM25's three top-k paths (README, "BM25 top-k").

- compiled MaxScore (numba) vs the numpy full scan: bit-identical scores
  (``tests/rag/test_bm25_kernels.py``; here also on the hand-worked sum below);
- numpy MaxScore (no numba) vs the full scan: the same passages in the same order, scores equal up
  to rounding of a sum taken in another order — *not* always bit-identical (hand-worked below), and
  within ``(m + 2)·ε`` of the score for ``m`` query terms (ε = 2⁻⁵², the bound of reordering a sum of
  non-negative terms, plus the two roundings of the repeated-term product and the ``absent`` shift).
"""

from __future__ import annotations

import unittest.mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from indexes.bm25_store import BM25Data
from indexes.manifest import BM25Spec
from rag.bm25 import BM25Scorer
from rag.bm25_pruning import maxscore_top_k, term_bounds
from rag.compat import numba as numba_compat

EPS = np.finfo(np.float64).eps  # 2**-52

# One passage (row 0) holding three terms of weights 0.1, 0.2, 0.3 (CSR, one posting each).
INDPTR, INDICES, WEIGHTS = np.array([0, 1, 2, 3]), np.array([0, 0, 0], dtype=np.int32), np.array([0.1, 0.2, 0.3])
QUERY = np.array([0, 1, 2])


def test_numpy_maxscore_adds_in_another_order_than_the_full_scan_by_hand():
    # Given the query [t0, t1, t2] over that passage
    upper, lower = term_bounds(INDPTR, WEIGHTS)
    # When the full scan adds in query order, (0.1 + 0.2) + 0.3, and numpy MaxScore largest bound
    # first, (0.3 + 0.2) + 0.1
    full = np.bincount(INDICES, weights=WEIGHTS, minlength=1)[0]
    rows, scores = maxscore_top_k(INDPTR, INDICES, WEIGHTS, upper, lower, 1, QUERY, 1)
    # Then the same passage, scores one ulp apart: 0.6000000000000001 against 0.6
    assert full == 0.6000000000000001 and rows.tolist() == [0] and scores.tolist() == [0.6]
    assert abs(scores[0] - full) == np.spacing(0.6) <= 3 * EPS * full


@pytest.mark.parametrize("min_df", [1, 10], ids=["sub-block tables", "no tables"])
def test_the_compiled_maxscore_adds_in_the_full_scans_order_by_hand(min_df):
    kernels = pytest.importorskip("rag.bm25_kernels", reason="numba is not installed (the [fast] extra)")
    # Given the same passage and query, with and without the common terms' sub-block tables
    upper = term_bounds(INDPTR, WEIGHTS)[0]
    blocks = kernels.window_blocks(INDPTR, INDICES, WEIGHTS)
    subs = kernels.sub_blocks(INDPTR, INDICES, WEIGHTS, upper, 1, min_df)
    # When the compiled MaxScore ranks
    rows, scores = kernels.maxscore_top_k(INDICES, WEIGHTS, *blocks, *subs, upper, np.zeros(0), QUERY, 1,
                                          np.zeros(0, dtype=bool))
    # Then the full scan's score, bit for bit
    assert rows.tolist() == [0] and scores.tolist() == [0.6000000000000001]


@st.composite
def corpus_and_query(draw):
    vocab = draw(st.integers(2, 25))
    word = st.integers(0, vocab - 1).map(lambda i: f"w{i // 3}")  # skewed: long lists, near-ties
    base = draw(st.lists(st.lists(word, min_size=0, max_size=12), min_size=1, max_size=40))
    docs = base + draw(st.lists(st.sampled_from(base), max_size=10))
    query = draw(st.lists(st.integers(0, vocab - 1).map(lambda i: f"w{i}"), min_size=1, max_size=8))
    return docs, query


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(corpus_and_query(), st.sampled_from(["lucene", "robertson", "atire", "bm25l", "bm25+", "okapi"]),
       st.integers(1, 15))
def test_numpy_maxscore_ranks_as_the_full_scan_with_scores_within_rounding(case, variant, k):
    # Given a random corpus and query
    docs, query = case
    scorer = BM25Scorer(BM25Data.from_token_lists(docs), BM25Spec(variant=variant), prune_min_docs=0)
    ids = scorer.lookup(query)
    # When both rank, numba reported missing (the numpy MaxScore path)
    with unittest.mock.patch.object(numba_compat, "bm25_kernels", lambda: None):
        rows, scores = scorer.top_k(ids, k)
    ref_rows, ref_scores = scorer.top_k_exhaustive(ids, k)
    # Then the same passages in the same order, each score within (m + 2)·ε of the full scan's
    assert rows.tolist() == ref_rows.tolist()
    assert np.all(np.abs(scores - ref_scores) <= (ids.size + 2) * EPS * np.abs(ref_scores))
