"""Retrievers: hybrid fusion against a hand computation, dense search against the stored vectors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rag.index import open_index


def fuse_by_definition(sparse: dict[int, float], dense: dict[int, float], method: str, alpha: float, norm: str,
                       rrf_k: int) -> dict[int, float]:
    """Fused score per candidate row, written from the definitions in plain Python (not rag.fusion).

    RRF (Cormack et al. 2009): Σ over the two lists of 1 / (k + rank), ranks 1-based over the
    candidates by descending score, ties to the lower row. Convex (Bruch et al. 2023):
    alpha·N(dense) + (1 - alpha)·N(sparse), N min-max or z-score over the candidates.
    """
    rows = sorted(sparse)
    if method == "rrf":
        def rank(scores):
            return {r: i + 1 for i, r in enumerate(sorted(rows, key=lambda r: (-scores[r], r)))}
        rs, rd = rank(sparse), rank(dense)
        return {r: 1 / (rrf_k + rs[r]) + 1 / (rrf_k + rd[r]) for r in rows}

    def normalise(scores):
        values = [scores[r] for r in rows]
        if norm == "minmax":
            lo, hi = min(values), max(values)
            return {r: (scores[r] - lo) / (hi - lo) if hi > lo else 0.0 for r in rows}
        mean = sum(values) / len(values)
        sd = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
        return {r: (scores[r] - mean) / sd if sd > 0 else 0.0 for r in rows}

    ns, nd = normalise(sparse), normalise(dense)
    return {r: alpha * nd[r] + (1 - alpha) * ns[r] for r in rows}


@pytest.mark.parametrize("method", ["convex", "rrf"])
def test_hybrid_fuses_exact_scores_of_the_union(sample_index, method):
    # Given
    index = open_index(sample_index, encoder=None)
    query = "rotating storage for search engines"
    hybrid = index.retriever("hybrid", method=method, depth=5)
    # When
    rows, fused = hybrid.rank_batch([query], 5)[0]
    # Then: the fusion recomputed from its definition over the union of both top-5 lists, with
    # each candidate's full BM25 score and its exact dot product with the query vector
    bm25, dense = index.bm25, index.dense
    cand = sorted({int(r) for r in bm25.rank(query, 5)[0]} | {int(r) for r in dense.rank_batch([query], 5)[0][0]})
    all_sparse = bm25.scorer.scores(bm25.scorer.lookup(bm25.analyzer(query)))
    q = dense.encoder.encode_queries([query])[0]
    sparse = {r: float(all_sparse[r]) for r in cand}
    dense_scores = {r: float(np.dot(dense.dense.vectors[r].astype(np.float64), q)) for r in cand}
    c = hybrid.config
    expected = fuse_by_definition(sparse, dense_scores, method, c.alpha, c.norm, c.rrf_k)
    top = sorted(cand, key=lambda r: (-expected[r], r))[:5]
    assert rows.tolist() == top
    np.testing.assert_allclose(fused, [expected[r] for r in top], atol=1e-6)


def test_dense_search_matches_stored_vectors(sample_index):
    index = open_index(sample_index)
    q = index.dense.encoder.encode_queries(["black holes and light"])
    hits = index.dense.search_vectors(q, 3)[0]
    rows = index.store.rows_of([h.id for h in hits])
    np.testing.assert_allclose([h.score for h in hits], index.dense.dense.vectors[rows] @ q[0], atol=1e-5)
    assert hits[0].id == "astro1"


class _Fixed:
    """A scoring retriever over rows 0..n-1 with fixed scores (the protocol HybridRetriever composes)."""

    store = None

    def __init__(self, scores: list[float]) -> None:
        self.scores = np.asarray(scores)

    def rank_scoring(self, queries, depth, where=None):
        rows = np.arange(self.scores.size)
        return [((rows, self.scores), lambda cand: self.scores[cand]) for _ in queries]


def test_hybrid_scores_equal_but_for_float_rounding_are_ties_ordered_by_row():
    # Given three candidates whose z-scores cancel: in exact arithmetic every fused score is 0
    # (0.4 is both lists' mean; rows 0 and 1 are +1 in one list and -1 in the other)
    from rag.retrievers import HybridConfig, HybridRetriever

    hybrid = HybridRetriever(_Fixed([0.7, 0.1, 0.4]), _Fixed([0.1, 0.7, 0.4]),
                             HybridConfig(method="convex", alpha=0.5, norm="zscore", depth=3))
    fused = hybrid.fuse(np.array([0.7, 0.1, 0.4]), np.array([0.1, 0.7, 0.4]))
    assert len(set(fused.tolist())) > 1  # the float results differ in their last bits (the case at hand)
    # When ranked
    [(rows, scores)] = hybrid.rank_batch(["q"], 3)
    # Then all three tie, and ties go by row; the scores are reported as computed
    assert rows.tolist() == [0, 1, 2]
    assert np.abs(scores).max() < 1e-15
