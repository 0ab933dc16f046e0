"""Retrievers: hybrid fusion against a hand computation, dense search against the stored vectors."""

from __future__ import annotations

import numpy as np
import pytest

from rag.fusion import convex, ranks_of, rrf
from rag.index import open_index


@pytest.mark.parametrize("method", ["convex", "rrf"])
def test_hybrid_fuses_exact_scores_of_the_union(sample_index, method):
    # Given
    index = open_index(sample_index, encoder=None)
    query = "rotating storage for search engines"
    hybrid = index.retriever("hybrid", method=method, depth=5)
    # When
    rows, fused = hybrid.rank_batch([query], 5)[0]
    # Then: recompute by hand over the union of both top-5 lists
    bm25, dense = index.bm25, index.dense
    cand = np.unique(np.concatenate([bm25.rank(query, 5)[0], dense.rank_batch([query], 5)[0][0]]))
    sparse = bm25.scorer.scores(bm25.scorer.lookup(bm25.analyzer(query)))[cand]
    dense_scores = dense.dense.vectors[cand] @ dense.encoder.encode_queries([query])[0]
    c = hybrid.config
    expected = rrf([ranks_of(sparse), ranks_of(dense_scores)], c.rrf_k) if method == "rrf" else convex(sparse, dense_scores, c.alpha, c.norm)
    order = np.lexsort((cand, -expected))[:5]
    assert rows.tolist() == cand[order].tolist()
    np.testing.assert_allclose(fused, expected[order], atol=1e-6)


def test_dense_search_matches_stored_vectors(sample_index):
    index = open_index(sample_index)
    q = index.dense.encoder.encode_queries(["black holes and light"])
    hits = index.dense.search_vectors(q, 3)[0]
    rows = index.store.rows_of([h.id for h in hits])
    np.testing.assert_allclose([h.score for h in hits], index.dense.dense.vectors[rows] @ q[0], atol=1e-5)
    assert hits[0].id == "astro1"
