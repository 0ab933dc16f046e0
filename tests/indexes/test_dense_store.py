"""The FAISS structures of the dense store against exact (brute-force) search."""

from __future__ import annotations

import numpy as np
import pytest

from indexes.dense_store import build_faiss
from indexes.errors import InputError
from indexes.manifest import FaissSpec


def unit_vectors(n: int, d: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_flat_equals_brute_force():
    x, q = unit_vectors(500, 32, 0), unit_vectors(10, 32, 1)
    scores, rows = build_faiss(x, FaissSpec(kind="flat")).search(q, 5)
    expected = np.argsort(-(q @ x.T), axis=1)[:, :5]
    np.testing.assert_array_equal(rows, expected)
    np.testing.assert_allclose(scores, np.take_along_axis(q @ x.T, expected, 1), atol=1e-5)


@pytest.mark.parametrize("spec, min_recall", [(FaissSpec(kind="hnsw"), 0.95), (FaissSpec(kind="ivfpq", ivf_nlist=16, pq_m=16, ivf_nprobe=16), 0.5)])
def test_approximate_structures_recall_exact_neighbours(spec, min_recall):
    # Given clustered data (realistic for embeddings), exact top-10 as the reference
    centers = unit_vectors(20, 32, 2)
    x = centers[np.random.default_rng(3).integers(0, 20, 2000)] + 0.3 * unit_vectors(2000, 32, 4)
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    q = x[:50] + 0.05 * unit_vectors(50, 32, 5)
    exact = np.argsort(-(q @ x.T), axis=1)[:, :10]
    # When
    _, rows = build_faiss(x, spec).search(q.astype(np.float32), 10)
    # Then
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(rows, exact)])
    assert recall >= min_recall


def test_ivfpq_refuses_a_corpus_too_small_to_train():
    with pytest.raises(InputError, match="ivfpq needs at least"):
        build_faiss(unit_vectors(100, 32, 0), FaissSpec(kind="ivfpq"))
