"""Retrievers: a query-side model plus an index part. BM25, dense, and their hybrid.

Each retriever ranks passage *rows* (:meth:`rank_batch`) and turns rows into :class:`Hit`
objects through the passage store only for the final top-k, so fusion and evaluation never
touch passage text. ``search`` / ``search_batch`` implement :class:`rag.types.Retriever`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from indexes.errors import InputError
from indexes.filters import RowFilter
from indexes.passage_store import PassageStore
from indexes.vector_store import VectorStore
from rag.analyzer import Analyzer
from rag.bm25 import BM25Scorer
from rag.fusion import Normalization, convex, ranks_of, rrf
from rag.protocols import QueryEncoder, Ranking, RowScorer, ScoringRetriever
from rag.types import Hit


def check_query(query: str) -> str:
    if not isinstance(query, str) or not query.strip():
        raise InputError("empty query: give some text to search for")
    return query


class _Base:
    store: PassageStore

    def rank_batch(self, queries: Sequence[str], depth: int, where: RowFilter | None = None) -> list[Ranking]:
        raise NotImplementedError

    def hits(self, ranking: Ranking) -> list[Hit]:
        rows, scores = ranking
        passages = self.store.get(rows.tolist())
        return [Hit(p.id, p.doc_id, float(s), p.title, p.text, p.metadata) for p, s in zip(passages, scores)]

    def search(self, query: str, k: int = 10, where: RowFilter | None = None) -> list[Hit]:
        return self.search_batch([query], k, where)[0]

    def search_batch(self, queries: Sequence[str], k: int = 10, where: RowFilter | None = None) -> list[list[Hit]]:
        """Top-``k`` hits of each query; with ``where`` (a metadata filter), among the passages it selects."""
        if k < 1:
            raise InputError(f"k must be at least 1, got {k}")
        return [self.hits(r) for r in self.rank_batch([check_query(q) for q in queries], k, where)]


class BM25Retriever(_Base):
    """Lexical retrieval: analyzer + eagerly scored BM25 postings."""

    def __init__(self, scorer: BM25Scorer, analyzer: Analyzer, store: PassageStore) -> None:
        self.scorer, self.analyzer, self.store = scorer, analyzer, store

    def terms(self, query: str) -> np.ndarray:
        """Term ids of the analyzed query (in-vocabulary terms, repeats kept)."""
        return self.scorer.lookup(self.analyzer(query))

    def rank(self, query: str, depth: int, where: RowFilter | None = None) -> Ranking:
        """Top-``depth`` rows; a filter is a mask over the rows applied before the cut."""
        return self.scorer.top_k(self.terms(query), depth, self._mask(where))

    def _mask(self, where: RowFilter | None) -> np.ndarray | None:
        if where is not None and where.mask.shape != (self.scorer.n_docs,):
            raise InputError(f"filter mask covers {where.mask.shape[0]} passages, the BM25 index {self.scorer.n_docs}: "
                             "resolve the filter with the same Index")
        return None if where is None else where.mask

    def rank_batch(self, queries: Sequence[str], depth: int, where: RowFilter | None = None) -> list[Ranking]:
        return [self.rank(q, depth, where) for q in queries]

    def rank_scoring(self, queries: Sequence[str], depth: int,
                     where: RowFilter | None = None) -> list[tuple[Ranking, RowScorer]]:
        out = []
        mask = self._mask(where)
        for q in queries:
            terms = self.terms(q)
            out.append((self.scorer.top_k(terms, depth, mask), lambda rows, t=terms: self.scorer.scores(t)[rows]))
        return out

    def score_rows(self, query: str, rows: np.ndarray) -> np.ndarray:
        """Exact BM25 scores of ``rows`` (passages without a query term score their floor)."""
        return self.scorer.scores(self.terms(query))[rows]


class DenseRetriever(_Base):
    """Bi-encoder retrieval: encode the query, inner-product search over unit vectors."""

    def __init__(self, dense: VectorStore, encoder: QueryEncoder, store: PassageStore) -> None:
        if encoder.dim != dense.dim:
            raise InputError(f"encoder dimension {encoder.dim} differs from the index's {dense.dim}: use the index's encoder")
        self.dense, self.encoder, self.store = dense, encoder, store

    def rank_vectors(self, vectors: np.ndarray, depth: int, where: RowFilter | None = None) -> list[Ranking]:
        """Rankings for query vectors (B, d), among the rows ``where`` selects (all without it)."""
        scores, rows = self.dense.search(vectors, depth, where)  # (B, k), (B, k)
        out = []
        for s, r in zip(scores, rows):
            keep = r >= 0
            out.append((r[keep].astype(np.int64), s[keep].astype(np.float64)))
        return out

    def rank_batch(self, queries: Sequence[str], depth: int, where: RowFilter | None = None) -> list[Ranking]:
        if not queries:
            return []
        return self.rank_vectors(self.encoder.encode_queries(queries), depth, where)

    def rank_scoring(self, queries: Sequence[str], depth: int,
                     where: RowFilter | None = None) -> list[tuple[Ranking, RowScorer]]:
        if not queries:
            return []
        vectors = self.encoder.encode_queries(queries)  # (B, d)
        return [(r, lambda rows, v=v: self.score_rows(v, rows)) for r, v in zip(self.rank_vectors(vectors, depth, where), vectors)]

    def search_vectors(self, vectors: np.ndarray, k: int = 10, where: RowFilter | None = None) -> list[list[Hit]]:
        """Search by precomputed query vectors (B, d), e.g. HyDE's averaged embeddings."""
        return [self.hits(r) for r in self.rank_vectors(vectors, k, where)]

    def score_rows(self, vector: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Exact scores (MaxP over windows) of one query vector (d,) for the passages at ``rows`` (C,)."""
        return self.dense.passage_scores(vector, rows)  # (C,)


TIE_DECIMALS = 9  # fused scores closer than 1e-9 rank as ties (by row), whatever their last bits


@dataclass(frozen=True)
class HybridConfig:
    """How BM25 and dense rankings are fused (defaults chosen on SciFact *train*, docs/benchmarks.md).

    Attributes:
        method: ``convex`` (weighted sum of normalised scores) or ``rrf``.
        alpha: weight of the dense score in ``convex``.
        norm: score normaliser for ``convex``.
        depth: candidates taken from each retriever before fusing.
        rrf_k: RRF's damping constant (60, Cormack et al. 2009).
    """

    method: Literal["convex", "rrf"] = "convex"
    alpha: float = 0.5
    norm: Normalization = "zscore"
    depth: int = 100
    rrf_k: int = 60


class HybridRetriever(_Base):
    """Fuses any two scoring retrievers (BM25 and dense by default). Every candidate from either
    list gets its *exact* score from both (BM25 over the postings, dense from the stored vector),
    so no candidate is penalised for falling just below the other list's cut-off.

    Args:
        bm25: the first (lexical) retriever; its ``store`` resolves rows to passages.
        dense: the second retriever; it must rank the same passage rows.
        config: fusion settings (the dense score gets weight ``alpha``).
    """

    def __init__(self, bm25: ScoringRetriever, dense: ScoringRetriever, config: HybridConfig = HybridConfig()) -> None:
        self.bm25, self.dense, self.config, self.store = bm25, dense, config, bm25.store

    def candidates(self, queries: Sequence[str], depth: int,
                   where: RowFilter | None = None) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """For each query: the union of both top-``depth`` lists (each filtered by ``where``) and
        each retriever's exact scores on it, ``(rows (C,), first (C,), second (C,))``. Each query
        is analyzed and encoded once."""
        if not queries:
            return []
        out = []
        pairs = zip(self.bm25.rank_scoring(queries, depth, where), self.dense.rank_scoring(queries, depth, where))
        for (r1, score1), (r2, score2) in pairs:
            cand = np.unique(np.concatenate([r1[0], r2[0]]))  # (C,)
            out.append((cand, score1(cand), score2(cand)))
        return out

    def fuse(self, sparse: np.ndarray, dense: np.ndarray) -> np.ndarray:
        """Fused scores of candidates from their exact BM25 and dense scores."""
        c = self.config
        if c.method == "rrf":
            return rrf([ranks_of(sparse), ranks_of(dense)], c.rrf_k)
        return convex(sparse, dense, c.alpha, c.norm)

    def rank_batch(self, queries: Sequence[str], depth: int, where: RowFilter | None = None) -> list[Ranking]:
        out = []
        for cand, sparse, dense in self.candidates(queries, max(depth, self.config.depth), where):
            if cand.size == 0:  # a filter no passage satisfies
                out.append((cand, np.zeros(0)))
                continue
            fused = self.fuse(sparse, dense)
            # ties by row (document order); fused scores equal but for float rounding (e.g. two z-scores
            # that cancel to ±1e-16) are ties: compared at TIE_DECIMALS, reported unrounded
            order = np.lexsort((cand, -np.round(fused, TIE_DECIMALS)))[:depth]
            out.append((cand[order], fused[order]))
        return out

    def rank_scoring(self, queries: Sequence[str], depth: int,
                     where: RowFilter | None = None) -> list[tuple[Ranking, RowScorer]]:
        raise InputError("a hybrid ranking cannot be fused again: compose BM25 and dense retrievers")


def best_per_document(hits: list[Hit], k: int) -> list[Hit]:
    """Keep the best passage of each document (max-passage), up to ``k`` documents, in hit order."""
    seen: set[str] = set()
    out = []
    for h in hits:
        if h.doc_id not in seen:
            seen.add(h.doc_id)
            out.append(h)
            if len(out) == k:
                break
    return out


def search_documents(search: Callable[[int], list[Hit]], k: int, depth: int, limit: int) -> list[Hit]:
    """The top ``k`` documents, each as its best passage, whenever ``k`` documents match.

    One long document split into many windows can fill any fixed passage depth, so the passage
    search is deepened (doubling) until it yields ``k`` distinct documents, returns fewer
    passages than asked (nothing more matches), or reaches every passage.

    Args:
        search: passage search at a depth, best first (e.g. ``lambda d: retriever.search(q, d)``).
        k: documents wanted.
        depth: first passage depth (:meth:`rag.index.Index.per_document_depth`).
        limit: passages in the index.
    """
    depth = max(1, min(depth, limit))
    while True:
        hits = search(depth)
        docs = best_per_document(hits, k)
        if len(docs) >= k or len(hits) < depth or depth >= limit:
            return docs
        depth = min(limit, 2 * depth)
