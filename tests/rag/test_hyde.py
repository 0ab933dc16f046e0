"""HyDE (Gao et al., 2022): the search vector is the normalised mean of the query embedding and
the hypothetical documents' embeddings; the whole path runs with a tiny random generator."""

from __future__ import annotations

import numpy as np
import pytest

from indexes.errors import InputError
from rag.hyde import HydeConfig, hyde_search, hyde_vector
from tests.rag.kv_tiny import tiny_generator, tiny_index


class FakeGenerator:
    """Writes fixed documents and records what it was asked."""

    def __init__(self, docs):
        self.docs, self.calls = docs, []

    def sample_texts(self, user, n, config):
        self.calls.append((user, n, config))
        return self.docs[:n]


class FakeEncoder:
    """Looks vectors up in a table: queries and passages are encoded differently, as in DPR-style encoders."""

    def __init__(self):
        self.q = {"why is the sky blue": np.array([1.0, 0.0, 0.0], np.float32)}
        self.p = {"doc a": np.array([0.0, 3.0, 0.0], np.float32), "doc b": np.array([0.0, 0.0, 6.0], np.float32)}

    def encode_queries(self, texts):
        return np.stack([self.q[t] for t in texts])

    def encode_passages(self, texts):
        return np.stack([self.p[t] for t in texts])


class FakeDense:
    def __init__(self):
        self.encoder, self.vectors = FakeEncoder(), None

    def search_vectors(self, vectors, k):
        self.vectors = vectors
        return [["hit"] * k]


def test_hyde_vector_is_the_normalised_mean_hand_worked():
    # Given f(q) = (1,0,0), f(d1) = (0,3,0), f(d2) = (0,0,6)
    # When
    v = hyde_vector("why is the sky blue", ["doc a", "doc b"], FakeEncoder())
    # Then mean = (1,3,6)/3 and v = (1,3,6)/sqrt(46)
    np.testing.assert_array_equal(v, (np.array([1, 3, 6], np.float32) / np.float32(np.sqrt(46))).astype(np.float32))


def test_hyde_search_passes_the_paper_defaults_and_the_vector():
    # Given a fake generator and dense retriever
    gen, dense = FakeGenerator(["doc a", "doc b"] * 4), FakeDense()
    # When
    hits = hyde_search("why is the sky blue", gen, dense, k=2)
    # Then N=8 documents at temperature 0.7 were asked for with the task prompt, and the search vector is HyDE's
    user, n, sampling = gen.calls[0]
    assert (n, sampling.temperature, sampling.max_new_tokens) == (8, 0.7, 512)
    assert user.endswith("Question: why is the sky blue\nPassage:")
    expected = np.array([1, 12, 24], np.float32) / 9  # (f(q) + 4 f(a) + 4 f(b)) / 9
    np.testing.assert_allclose(dense.vectors[0], expected / np.linalg.norm(expected), rtol=1e-6)
    assert hits == ["hit", "hit"]


def test_hyde_rejects_zero_documents():
    with pytest.raises(InputError, match="at least one"):
        HydeConfig(n=0)


def test_hyde_with_a_tiny_random_generator_runs_end_to_end():
    # Given a real dense index and a tiny random generator
    dense = tiny_index().retriever("dense")
    gen = tiny_generator("llama")
    config = HydeConfig(n=2, max_new_tokens=6, seed=0)
    # When
    hits = hyde_search("why is the sky blue", gen, dense, k=3, config=config)
    again = hyde_search("why is the sky blue", gen, dense, k=3, config=config)
    # Then three passages come back, reproducibly with a seed
    assert len(hits) == 3 and [h.id for h in hits] == [h.id for h in again]
    assert all(-1.0 - 1e-5 <= h.score <= 1.0 + 1e-5 for h in hits)  # cosines of unit vectors
