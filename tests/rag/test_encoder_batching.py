"""A query vector does not depend on which other queries share the encoder call."""

from __future__ import annotations

import numpy as np

from rag.encoder import Encoder, EncoderConfig

QUERIES = ["why is the sky blue", "vaccines", "how do hard disk drives store data on spinning platters",
           "statins reduce cardiovascular risk", "why is the sea blue"]


def test_a_query_alone_and_in_any_batch_gets_the_same_bits(encoder):
    # Given queries of different token lengths (a padded batch changed the 7th digit of scores)
    alone = np.vstack([encoder.encode_queries([q]) for q in QUERIES])
    # When encoded together, in another order, and with a small batch size
    together = encoder.encode_queries(QUERIES)
    shuffled = encoder.encode_queries(QUERIES[::-1])[::-1]
    small = Encoder.__new__(Encoder)
    small.__dict__.update(encoder.__dict__, config=EncoderConfig(device="cpu", batch_size=2))
    # Then every row is bit-identical to the query encoded alone
    np.testing.assert_array_equal(together, alone)
    np.testing.assert_array_equal(shuffled, alone)
    np.testing.assert_array_equal(small.encode_queries(QUERIES), alone)


def test_padding_is_what_changed_the_bits(encoder):
    # Given the plain sentence-transformers call, which pads a batch to its longest text
    padded = encoder.model.encode(QUERIES, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    alone = np.vstack([encoder.encode_queries([q]) for q in QUERIES])
    # Then it differs in the last bits (so the test above can fail), by float rounding only
    assert not np.array_equal(padded, alone)
    np.testing.assert_allclose(padded, alone, atol=1e-6)


def test_shared_passes_are_deterministic_and_within_float_rounding(encoder):
    # Given the faster path that shares (padded) forward passes between queries
    alone = np.vstack([encoder.encode_queries([q]) for q in QUERIES])
    # When
    shared = encoder.encode_queries(QUERIES, alone=False)
    # Then
    np.testing.assert_array_equal(shared, encoder.encode_queries(QUERIES, alone=False))
    np.testing.assert_allclose(shared, alone, atol=1e-6)
