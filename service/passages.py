"""An in-memory read-through cache in front of an index's SQLite passage store.

A search spends as long turning its top-k rows into passages (one SQLite query, then one
``json.loads`` of the metadata per hit) as ranking them: about 0.2 ms of a BM25 query's
0.45 ms on SciFact (docs/benchmarks.md (service)). A long-running service sees the same passages
again and again, so it keeps every passage it has read, up to ``max_passages`` (then it stops
adding: no eviction bookkeeping on the hot path). The passages are the store's own objects,
so hits are identical with and without the cache.

Example:
    (Not run as a doctest: needs an opened index.)
    >>> index.store = CachedPassageStore(index.store, max_passages=200_000)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence

from indexes.passage_store import Passage, PassageStore


class CachedPassageStore:
    """A :class:`~indexes.passage_store.PassageStore` that remembers the passages it returned.

    Args:
        store: the SQLite store; every other method is delegated to it.
        max_passages: passages kept at most (0 disables the cache).
    """

    def __init__(self, store: PassageStore, max_passages: int) -> None:
        self.store = store
        self.max_passages = max_passages
        self._cache: dict[int, Passage] = {}  # dict reads and writes are atomic: thread-safe

    def __len__(self) -> int:
        return len(self.store)

    def __getattr__(self, name: str):
        return getattr(self.store, name)

    def get(self, rows: Sequence[int]) -> list[Passage]:
        """Passages at ``rows``, in order; only the missing ones are read from SQLite."""
        cache = self._cache
        found = [cache.get(int(r)) for r in rows]
        missing = [int(r) for r, p in zip(rows, found) if p is None]
        if not missing:
            return found  # type: ignore[return-value]
        fetched = dict(zip(missing, self.store.get(missing)))
        if len(cache) < self.max_passages:
            cache.update(fetched)
        return [p if p is not None else fetched[int(r)] for r, p in zip(rows, found)]

    @property
    def cached(self) -> int:
        """Passages held in memory."""
        return len(self._cache)
