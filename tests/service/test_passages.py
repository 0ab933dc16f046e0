"""The passage cache returns exactly what the SQLite store returns (fast path = slow path)."""

from __future__ import annotations

import random

from indexes.segmented import open_passage_store
from service.passages import CachedPassageStore


def test_cached_reads_equal_sqlite_reads_in_any_order(sample_index):
    # Given the store and a cache in front of it that holds at most 8 passages
    store = open_passage_store(sample_index)
    cached = CachedPassageStore(open_passage_store(sample_index), max_passages=8)
    rng = random.Random(0)
    # When rows are read in random orders, with repeats, again and again
    for _ in range(50):
        rows = [rng.randrange(len(store)) for _ in range(rng.randrange(1, 12))]
        # Then every read equals the store's
        assert cached.get(rows) == store.get(rows)
    assert 8 <= cached.cached < len(store)  # filled up to the bound (one read may pass it), then stopped
    assert cached.ids() == store.ids() and len(cached) == len(store)
