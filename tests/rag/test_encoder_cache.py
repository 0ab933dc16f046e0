"""``rag.encoder_cache.CachingEncoder``: the same vectors as the wrapped encoder, each text encoded once."""

from __future__ import annotations

import numpy as np

from rag.encoder_cache import CachingEncoder


class CountingEncoder:
    """Deterministic toy encoder that records every text it is asked to encode."""

    dim = 3

    def __init__(self):
        self.seen: list[str] = []

    def _vec(self, texts):
        self.seen += list(texts)
        X = np.array([[len(t), t.count("a"), 1.0] for t in texts], dtype=float).reshape(-1, 3)
        return X / np.linalg.norm(X, axis=1, keepdims=True)

    encode_queries = encode_passages = _vec


def test_caching_encoder_returns_same_vectors_and_encodes_each_text_once():
    # Given
    inner = CountingEncoder()
    enc = CachingEncoder(inner)
    # When
    enc.warm_queries(["q1", "q2"])
    first = enc.encode_passages(["aa b", "c", "aa b"])
    second = enc.encode_passages(["c", "dd"])
    q = enc.encode_queries(["q2"])
    # Then: fast path (cached) equals slow path (direct), and no text was encoded twice per kind
    np.testing.assert_array_equal(first, CountingEncoder()._vec(["aa b", "c", "aa b"]))
    np.testing.assert_array_equal(second, CountingEncoder()._vec(["c", "dd"]))
    np.testing.assert_array_equal(q, CountingEncoder()._vec(["q2"]))
    assert inner.seen == ["q1", "q2", "aa b", "c", "dd"]
    assert enc.dim == 3
