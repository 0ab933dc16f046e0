"""The compiled BM25 top-k (numba) equals the numpy exhaustive scan bit for bit; without numba, numpy runs.

Fast path equals slow path: :mod:`rag.bm25_kernels` (block-max MaxScore over row windows, and the exhaustive
accumulator that serves negative-weight queries) against :meth:`BM25Scorer.top_k_exhaustive` on
random corpora and queries: the same rows in the same order and the *same* float scores, for every
BM25 variant (bm25l/bm25+ with their ``absent`` weights, Robertson's negative idf), with ties,
repeated query terms, ``k`` beyond the matches and metadata masks (empty posting lists: by hand).
"""

from __future__ import annotations

import threading
import time
import unittest.mock
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from indexes.bm25_store import BM25Data
from indexes.manifest import BM25Spec
from rag import bm25, compat
from rag.bm25 import BM25Scorer
from rag.bm25_pruning import term_bounds
from rag.compat import numba as numba_compat

kernels = pytest.importorskip("rag.bm25_kernels", reason="numba is not installed (the [fast] extra)")

VARIANTS = ["lucene", "robertson", "atire", "bm25l", "bm25+", "okapi"]


@st.composite
def corpus_query_mask(draw):
    vocab = draw(st.integers(2, 25))
    # Skewed draws (terms in most passages: long lists, negative Robertson idf) and duplicated passages (ties).
    word = st.integers(0, vocab - 1).map(lambda i: f"w{i // 3}")
    base = draw(st.lists(st.lists(word, min_size=0, max_size=12), min_size=1, max_size=40))
    docs = base + draw(st.lists(st.sampled_from(base), max_size=10))
    query = draw(st.lists(st.integers(0, vocab - 1).map(lambda i: f"w{i}"), min_size=1, max_size=8))
    mask = draw(st.none() | st.lists(st.booleans(), min_size=len(docs), max_size=len(docs)).map(np.array))
    return docs, query, mask


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(corpus_query_mask(), st.sampled_from(VARIANTS), st.integers(1, 60), st.sampled_from([0, 10**9]))
def test_compiled_top_k_equals_the_exhaustive_scan_bit_for_bit(case, variant, k, dense_min_docs):
    # Given a random corpus, a query (repeats allowed; empty lists: the by-hand tests), maybe a mask,
    #   with the common terms' sub-block tables built (as on large corpora) or not
    docs, query, mask = case
    scorer = BM25Scorer(BM25Data.from_token_lists(docs), BM25Spec(variant=variant), prune_min_docs=0)
    ids = scorer.lookup(query)
    # When the compiled path and the numpy exhaustive scan rank
    with unittest.mock.patch.object(bm25, "_DENSE_MIN_DOCS", dense_min_docs):
        rows, scores = scorer.top_k(ids, k, mask)
    ref_rows, ref_scores = scorer.top_k_exhaustive(ids, k, mask)
    # Then the same passages, in the same order, with identical scores
    assert rows.tolist() == ref_rows.tolist()
    assert scores.tolist() == ref_scores.tolist()


def test_the_compiled_path_runs_when_numba_is_installed(monkeypatch):
    # Given a prunable query (non-negative weights) and a spy on the kernels
    docs = [["a", "b"], ["b", "c", "c"], ["a", "c"], ["d"]]
    scorer = BM25Scorer(BM25Data.from_token_lists(docs), BM25Spec(), prune_min_docs=0)
    calls = []
    real = numba_compat.bm25_kernels()

    class Spy:
        def __getattr__(self, name):
            calls.append(name)
            return getattr(real, name)

    monkeypatch.setattr(numba_compat, "bm25_kernels", lambda: Spy())
    # When
    scorer.top_k(scorer.lookup(["a", "c"]), 2)
    # Then the MaxScore kernel answered (after computing the starting thresholds once)
    assert calls[-1] == "maxscore_top_k" and "exhaustive_top_k" not in calls


EVERY, NO_SEED = np.zeros(0, dtype=bool), np.zeros(0)


def maxscore(indptr, indices, weights, terms, k, allowed=EVERY, seed=NO_SEED, min_df=1):
    blocks = kernels.window_blocks(indptr, indices, weights)
    upper = term_bounds(indptr, weights)[0]
    subs = kernels.sub_blocks(indptr, indices, weights, upper, int(indices.max(initial=-1)) + 1, min_df)
    return kernels.maxscore_top_k(indices, weights, *blocks, *subs, upper, seed, np.asarray(terms, dtype=np.int64), k, allowed)


def test_maxscore_kernel_by_hand_ties_go_to_the_lowest_rows():
    # Given two terms over 6 rows; rows 1, 3 and 4 tie at 3.0, row 5 scores 5.0
    #   term 0: rows [1, 3, 4, 5] weights [1, 1, 1, 2];  term 1: rows [0, 1, 3, 4, 5] weights [.5, 2, 2, 2, 3]
    indptr = np.array([0, 4, 9, 9])  # term 2 has an empty list
    indices = np.array([1, 3, 4, 5, 0, 1, 3, 4, 5], dtype=np.int32)
    weights = np.array([1.0, 1.0, 1.0, 2.0, 0.5, 2.0, 2.0, 2.0, 3.0])
    # When the top 3 is asked for (5.0, then two of the three 3.0 ties)
    rows, scores = maxscore(indptr, indices, weights, [0, 1, 2], 3)
    # Then rows 5, 1, 3 (the tie goes to the lowest rows), and k beyond the 5 matches returns all 5
    assert rows.tolist() == [5, 1, 3] and scores.tolist() == [5.0, 3.0, 3.0]
    rows, scores = maxscore(indptr, indices, weights, [0, 1, 2], 9)
    assert rows.tolist() == [5, 1, 3, 4, 0] and scores.tolist() == [5.0, 3.0, 3.0, 3.0, 0.5]
    # And a mask that removes row 1 lets row 4 in; the exhaustive kernel agrees, repeated terms count twice
    allowed = np.array([True, False, True, True, True, True])
    assert maxscore(indptr, indices, weights, [0, 1, 2], 3, allowed)[0].tolist() == [5, 3, 4]
    twice = [1, 0, 1]  # row 5: 3 + 2 + 3 = 8; rows 1, 3, 4: 2 + 1 + 2 = 5
    assert maxscore(indptr, indices, weights, twice, 2)[1].tolist() == [8.0, 5.0]
    assert kernels.exhaustive_top_k(indptr, indices, weights, 6, np.array(twice), 2, EVERY)[0].tolist() == [5, 1]
    # And the query of the empty list alone matches nothing
    assert maxscore(indptr, indices, weights, [2], 3)[0].tolist() == []


@pytest.mark.parametrize("dense_min_docs", [0, 10**9])  # with and without the sub-block tables
@pytest.mark.parametrize("variant", ["lucene", "robertson", "bm25+"])
def test_compiled_top_k_over_many_row_windows(variant, dense_min_docs, monkeypatch):
    monkeypatch.setattr(bm25, "_DENSE_MIN_DOCS", dense_min_docs)
    # Given 20,000 passages (five row windows of MaxScore) with Zipf-distributed terms, and ties by duplication
    rng = np.random.default_rng(7)
    docs = [[f"w{int(x)}" for x in rng.zipf(1.3, size=rng.integers(0, 15)) if x < 3000] for _ in range(10_000)]
    docs += [docs[i] for i in rng.integers(0, 10_000, size=10_000)]
    scorer = BM25Scorer(BM25Data.from_token_lists(docs), BM25Spec(variant=variant), prune_min_docs=0)
    for j in range(40):
        ids = scorer.lookup([f"w{int(x)}" for x in rng.zipf(1.2, size=rng.integers(1, 9)) if x < 3000])
        k = [1, 10, 100][j % 3]
        mask = rng.random(scorer.n_docs) < 0.3 if j % 4 == 0 else None
        # When / Then the compiled path equals the exhaustive scan exactly, with and without a mask
        rows, scores = scorer.top_k(ids, k, mask)
        ref_rows, ref_scores = scorer.top_k_exhaustive(ids, k, mask)
        assert rows.tolist() == ref_rows.tolist() and scores.tolist() == ref_scores.tolist()


def test_without_numba_the_numpy_path_ranks_the_same(monkeypatch):
    # Given numba reported missing by the adapter
    monkeypatch.setattr(numba_compat, "bm25_kernels", lambda: None)
    rng = np.random.default_rng(0)
    docs = [[f"w{int(x)}" for x in rng.zipf(1.4, size=rng.integers(0, 20)) if x < 200] for _ in range(500)]
    scorer = BM25Scorer(BM25Data.from_token_lists(docs), BM25Spec(), prune_min_docs=0)
    for _ in range(30):
        ids = scorer.lookup([f"w{int(x)}" for x in rng.zipf(1.3, size=4) if x < 200])
        mask = rng.random(500) < 0.5
        # When / Then the numpy MaxScore and the masked exhaustive scan still answer exactly
        assert scorer.top_k(ids, 10)[0].tolist() == scorer.top_k_exhaustive(ids, 10)[0].tolist()
        assert scorer.top_k(ids, 10, mask)[0].tolist() == scorer.top_k_exhaustive(ids, 10, mask)[0].tolist()


def test_the_adapter_names_the_fix_for_an_old_or_broken_numba(monkeypatch):
    # Given numba installed at a version older than the declared bound
    numba_compat.bm25_kernels.cache_clear()
    monkeypatch.setattr(compat, "version", lambda package: "0.58.1")
    # When / Then the error says what is needed and how to get it
    with pytest.raises(compat.DependencyVersionError, match=r"needs numba>=0\.59\.0, found 0\.58\.1: pip install -U"):
        numba_compat.bm25_kernels()
    # Given numba that fails at import (e.g. built for another numpy) / Then it names both ways out
    monkeypatch.setattr(compat, "version", lambda package: "0.60.0")
    monkeypatch.setitem(__import__("sys").modules, "rag.bm25_kernels", None)
    with pytest.raises(compat.DependencyVersionError, match="could not import numba.*or uninstall numba"):
        numba_compat.bm25_kernels()
    monkeypatch.undo()
    numba_compat.bm25_kernels.cache_clear()


def test_the_adapter_reports_a_missing_numba_as_none(monkeypatch):
    # Given no numba on the path
    numba_compat.bm25_kernels.cache_clear()
    monkeypatch.setattr(numba_compat.importlib.util, "find_spec", lambda name: None)
    # When / Then the scorer's numpy fallback is chosen
    assert numba_compat.bm25_kernels() is None
    monkeypatch.undo()
    numba_compat.bm25_kernels.cache_clear()
    assert numba_compat.bm25_kernels() is kernels


def test_kth_largest_by_hand_and_as_a_starting_threshold():
    # Given term 0 with weights [1, 4, 2, 3], term 1 with one posting, term 2 with none
    indptr = np.array([0, 4, 5, 5])
    weights = np.array([1.0, 4.0, 2.0, 3.0, 9.0])
    # When / Then the 2nd largest is 3.0 for term 0; terms with fewer than 2 postings have none (-inf)
    assert kernels.kth_largest(indptr, weights, 2).tolist() == [3.0, -np.inf, -np.inf]
    assert kernels.kth_largest(indptr, weights, 1).tolist() == [4.0, 9.0, -np.inf]
    # And MaxScore started from it finds the same top 2 as from -inf (row 2: 2 + 9, then row 1: 4)
    indices = np.array([0, 1, 2, 3, 2], dtype=np.int32)
    seeded = maxscore(indptr, indices, weights, [0, 1], 2, seed=kernels.kth_largest(indptr, weights, 2))
    assert seeded[0].tolist() == [2, 1] and seeded[1].tolist() == [11.0, 4.0]
    assert maxscore(indptr, indices, weights, [0, 1], 2)[0].tolist() == [2, 1]


def test_the_compiled_path_refuses_out_of_range_terms_and_masks():
    # Given a scorer on the compiled path (the kernels read arrays without bounds checks)
    scorer = BM25Scorer(BM25Data.from_token_lists([["a", "b"], ["b", "c"]]), BM25Spec(), prune_min_docs=0)
    # When / Then a term id outside the vocabulary, or a mask of the wrong length, is refused
    with pytest.raises(IndexError, match=r"term ids must lie in \[0, 3\)"):
        scorer.top_k(np.array([0, 3]), 2)
    with pytest.raises(IndexError):
        scorer.top_k(np.array([-1]), 2)
    with pytest.raises(ValueError, match=r"allowed must be a \(2,\) mask"):
        scorer.top_k(np.array([0]), 2, np.ones(3, dtype=bool))


def test_sub_blocks_by_hand_round_up_and_find_each_sub_block():
    # Given term 0 in rows 1, 3 (sub-block 0), 70 (sub-block 1) and 4100 (window 1, sub-block 64), upper 4.0,
    #   and term 1 with one posting (below min_df = 2: not dense)
    indptr = np.array([0, 4, 5])
    indices = np.array([1, 3, 70, 4100, 5], dtype=np.int32)
    weights = np.array([1.0, 4.0, 0.01, 2.0, 9.0])
    upper = term_bounds(indptr, weights)[0]
    # When
    slot, qmax, start = kernels.sub_blocks(indptr, indices, weights, upper, 4101, 2)
    # Then only term 0 has a table row, of 2 windows × 64 sub-blocks
    assert slot.tolist() == [0, -1] and qmax.shape == start.shape == (1, 128)
    # And each maximum is rounded up to the next of 255 steps of 4.0/255: 4.0 → 255, 0.01 → 1 (not 0), 2.0 → 128
    assert (qmax[0, 0], qmax[0, 1], qmax[0, 64]) == (255, 1, 128)
    assert int(np.count_nonzero(qmax)) == 3
    step = 4.0 / 255
    assert all(qmax[0, r // 64] * step >= w for r, w in zip([1, 3, 70, 4100], [1.0, 4.0, 0.01, 2.0]))
    # And sub-block starts count from the window's first posting: 0 | 2 (row 70) | 3 for the window's rest
    assert start[0, :4].tolist() == [0, 2, 3, 3] and start[0, 63] == 3
    assert start[0, 64:67].tolist() == [0, 1, 1]


def reference_top_k(indptr, indices, weights, terms, k, allowed=None):
    """The exhaustive numpy scan: scores summed in query order from 0.0, best k by (-score, row)."""
    rows = np.concatenate([indices[indptr[t]:indptr[t + 1]] for t in terms]).astype(np.int64)
    vals = np.concatenate([weights[indptr[t]:indptr[t + 1]] for t in terms])
    n = int(indices.max(initial=-1)) + 1
    acc = np.bincount(rows, weights=vals, minlength=n)
    match = np.zeros(n, bool)
    match[rows] = True
    if allowed is not None:
        match &= allowed[:n]
    cand = np.flatnonzero(match)
    order = np.lexsort((cand, -acc[cand]))[:k]
    return cand[order].tolist(), acc[cand[order]].tolist()


@st.composite
def postings_query(draw):
    n_terms = draw(st.integers(1, 6))
    span = draw(st.sampled_from([64, 300, 5000, 9000]))  # one sub-block .. three windows of rows
    levels = draw(st.lists(st.floats(0.0, 5.0), min_size=1, max_size=4))  # few distinct weights: ties
    lists = [sorted(draw(st.sets(st.integers(0, span - 1), max_size=80))) for _ in range(n_terms)]
    weights = [[draw(st.sampled_from(levels)) for _ in rows] for rows in lists]
    indptr = np.concatenate([[0], np.cumsum([len(r) for r in lists])]).astype(np.int64)
    indices = np.array([r for rows in lists for r in rows], dtype=np.int32)
    terms = draw(st.lists(st.integers(0, n_terms - 1), min_size=1, max_size=6))
    return indptr, indices, np.array([w for ws in weights for w in ws], dtype=np.float64), terms


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(postings_query(), st.sampled_from([1, 2, 5, 30, 1 << 40]), st.integers(1, 25), st.booleans())
def test_maxscore_with_dense_and_short_lists_equals_the_exhaustive_scan(case, min_df, k, masked):
    # Given postings over up to three windows, a min_df that makes some, all or no lists dense, maybe a mask
    indptr, indices, weights, terms = case
    allowed = np.random.default_rng(len(indices)).random(9000) < 0.6 if masked else None
    # When the kernel ranks (seeded with the k-th largest weights where no mask hides passages)
    seed = kernels.kth_largest(indptr, weights, k) if not masked else NO_SEED
    rows, scores = maxscore(indptr, indices, weights, terms, k, EVERY if allowed is None else allowed, seed, min_df)
    # Then the same rows, order and bit-identical scores as the exhaustive scan
    assert (rows.tolist(), scores.tolist()) == reference_top_k(indptr, indices, weights, terms, k, allowed)


def test_concurrent_first_queries_build_the_pruning_arrays_once(monkeypatch):
    # Given a fresh scorer on the compiled path, and builders that count their calls and are slow to finish
    rng = np.random.default_rng(3)
    docs = [[f"w{int(x)}" for x in rng.zipf(1.3, size=rng.integers(1, 12)) if x < 500] for _ in range(3000)]
    scorer = BM25Scorer(BM25Data.from_token_lists(docs), BM25Spec(), prune_min_docs=0)
    real, calls = numba_compat.bm25_kernels(), []

    class Slow:
        def __getattr__(self, name):
            fn = getattr(real, name)
            if name not in ("window_blocks", "sub_blocks", "kth_largest"):
                return fn

            def counted(*args):
                calls.append(name)
                time.sleep(0.05)  # widen the window in which a second thread could start its own build
                return fn(*args)
            return counted

    monkeypatch.setattr(numba_compat, "bm25_kernels", lambda: Slow())
    queries = [scorer.lookup([f"w{int(x)}" for x in rng.zipf(1.2, size=4) if x < 500]) for _ in range(8)]
    queries = [q for q in queries if q.size]
    # When eight threads send their first queries at once
    barrier = threading.Barrier(8)

    def first(q):
        barrier.wait()
        return scorer.top_k(q, 10)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(first, (queries * 8)[:8]))
    # Then each array was built exactly once, and every thread got the exhaustive scan's answer
    assert sorted(calls) == ["kth_largest", "sub_blocks", "window_blocks"]
    for q, (rows, scores) in zip((queries * 8)[:8], results):
        ref_rows, ref_scores = scorer.top_k_exhaustive(q, 10)
        assert rows.tolist() == ref_rows.tolist() and scores.tolist() == ref_scores.tolist()
