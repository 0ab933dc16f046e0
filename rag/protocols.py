"""The declared seams of retrieval: :class:`QueryEncoder` and :class:`ScoringRetriever`.

A *scoring* retriever ranks passage rows and can give the exact score of any row for the same
query, which is what hybrid fusion needs (:class:`rag.retrievers.HybridRetriever` composes any
two). Both take an optional metadata filter (:class:`indexes.filters.RowFilter`, from
:meth:`rag.index.Index.where`) applied before the top-k cut. A query encoder turns text into vectors for a :class:`indexes.vector_store.VectorStore`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from indexes.filters import RowFilter
from indexes.passage_store import PassageStore
from rag.types import Hit

Ranking = tuple[np.ndarray, np.ndarray]  # (rows (k,), scores (k,)), best first
RowScorer = Callable[[np.ndarray], np.ndarray]  # rows (C,) -> exact scores (C,) for one query


@runtime_checkable
class QueryEncoder(Protocol):
    """Text queries → unit vectors (B, d) in the space of an index's passage vectors."""

    @property
    def dim(self) -> int: ...

    def encode_queries(self, queries: Sequence[str]) -> np.ndarray: ...


@runtime_checkable
class ScoringRetriever(Protocol):
    """Ranks passage rows and scores any row exactly for the same query."""

    store: PassageStore

    def rank_batch(self, queries: Sequence[str], depth: int, where: RowFilter | None = None) -> list[Ranking]:
        """Top-``depth`` rows and scores of each query, best first, ties by the lower row; with
        ``where``, among the rows it selects only (filtered before the cut, not after)."""
        ...

    def rank_scoring(self, queries: Sequence[str], depth: int,
                     where: RowFilter | None = None) -> list[tuple[Ranking, RowScorer]]:
        """Each query's ranking and a function giving its exact score of any rows (query analysed once)."""
        ...

    def search(self, query: str, k: int = 10, where: RowFilter | None = None) -> list[Hit]: ...

    def search_batch(self, queries: Sequence[str], k: int = 10, where: RowFilter | None = None) -> list[list[Hit]]: ...
