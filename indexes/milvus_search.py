"""Searching one commit of a Milvus index by global passage row: dense (:class:`MilvusVectorStore`)
and BM25 (:class:`MilvusBM25Store`).

Rows of the engine are (segment, row in segment); a commit's *global rows* are its live passages
in document-id order (:class:`indexes.segmented.CommitView`). :class:`CommitRows` maps between
the two; rows that the commit does not hold (tombstoned, or written by a later commit) are
dropped from every result. Both searches are exact top-k with ties by the lower global row, as
the local index's: the engine is asked for more rows until the k-th score is strictly above the
last one fetched (or nothing more matches).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from indexes.errors import InputError
from indexes.filters import RowFilter
from indexes.milvus_filter import to_milvus
from indexes.milvus_store import MAX_LIMIT, SEG_SHIFT, MilvusCollections, pack


class CommitRows:
    """Global rows ↔ (segment number, row in segment) of one commit.

    Args:
        segs: segment number of each of the commit's segments (S,).
        seg_of: segment index (into ``segs``) of each global row (G,).
        local: row in its segment of each global row (G,).
        sizes: rows (passages, deleted included) of each segment (S,).
    """

    def __init__(self, segs: Sequence[int], seg_of: np.ndarray, local: np.ndarray, sizes: Sequence[int]) -> None:
        self.segs = np.asarray(segs, dtype=np.int64)  # (S,)
        self.seg_of, self.local = np.asarray(seg_of, np.int64), np.asarray(local, np.int64)  # (G,), (G,)
        self._global = {int(s): np.full(int(n), -1, np.int64) for s, n in zip(self.segs, sizes)}
        for g, (s, r) in enumerate(zip(self.segs[self.seg_of], self.local)):
            self._global[int(s)][r] = g

    def __len__(self) -> int:
        return int(self.seg_of.size)

    def pks(self, rows: np.ndarray | None = None) -> np.ndarray:
        """Engine keys of global ``rows`` (default all)."""
        rows = np.arange(len(self)) if rows is None else np.asarray(rows, np.int64)
        return pack(self.segs[self.seg_of[rows]], self.local[rows])

    def to_global(self, seg: np.ndarray, row: np.ndarray) -> np.ndarray:
        """Global rows of (segment number, row) pairs; ``-1`` where this commit does not hold it."""
        out = np.full(len(seg), -1, np.int64)
        for i, (s, r) in enumerate(zip(seg.tolist(), row.tolist())):
            table = self._global.get(s)
            if table is not None and r < table.size:
                out[i] = table[r]
        return out


def _expression(where: RowFilter | None, rows: CommitRows, what: str) -> str | None:
    """The engine expression of ``where`` (``None`` for no filter), refusing a filter resolved on another commit."""
    if where is None:
        return None
    if where.mask.shape != (len(rows),):
        raise InputError(f"filter mask covers {where.mask.shape[0]} passages, the {what} {len(rows)}: "
                         "resolve the filter on the commit being searched (Index.where)")
    return to_milvus(where.expr)


def _settle(scores: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows at their best score, best first, ties by the lower row, at most ``k``."""
    keep = rows >= 0
    s, r = scores[keep], rows[keep]
    order = np.lexsort((r, -s))
    s, r = s[order], r[order]
    _, first = np.unique(r, return_index=True)
    first.sort()
    return r[first][:k], s[first][:k]


class MilvusVectorStore:
    """:class:`indexes.vector_store.VectorStore` over the dense rows of one commit (MaxP over windows).

    Args:
        engine: the index's collections.
        rows: the commit's row map.
        n_windows: live window rows of the commit (bounds the search depth).
        dim: vector dimension.
    """

    def __init__(self, engine: MilvusCollections, rows: CommitRows, n_windows: int, dim: int) -> None:
        self.engine, self.rows, self.n_windows, self._dim = engine, rows, n_windows, dim
        self.live_segs = [int(s) for s in rows.segs]

    @property
    def dim(self) -> int:
        return self._dim

    def __len__(self) -> int:
        return len(self.rows)

    def search(self, queries: np.ndarray, k: int, where: RowFilter | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` passages (B, k) by their best window's inner product, among those whose metadata
        satisfy ``where`` (its expression pushed down into the engine, :func:`indexes.milvus_filter.to_milvus`);
        ``-1``/``-inf`` where fewer."""
        expr = _expression(where, self.rows, "Milvus vector store")
        q = np.asarray(queries, dtype=np.float32)  # (B, d)
        B, k = q.shape[0], min(k, len(self) if where is None else where.count)
        scores, rows = np.full((B, k), -np.inf, np.float32), np.full((B, k), -1, np.int64)
        todo = np.arange(B)
        depth = min(MAX_LIMIT, k + min(self.n_windows - len(self), k) + 1)
        while todo.size and k:
            again = []
            for t, (s, seg, prow) in zip(todo, self.engine.search_vectors(q[todo], depth, self.live_segs, expr)):
                p, ps = _settle(s, self.rows.to_global(seg, prow), k)
                seen_all = s.size < depth or depth >= MAX_LIMIT
                if seen_all or (p.size >= k and ps[k - 1] > s[-1]):
                    rows[t, :p.size], scores[t, :p.size] = p, ps
                else:
                    again.append(t)
            todo, depth = np.asarray(again, np.int64), min(MAX_LIMIT, 2 * depth)
        return scores, rows

    def vectors_of(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Window vectors of the passages at ``rows`` (C,) → ``(vectors (W, d), passage 0..C-1 of each (W,))``."""
        rows = np.asarray(rows, np.int64)
        segs, local = self.rows.segs[self.rows.seg_of[rows]], self.rows.local[rows]
        parts, owners = [], []
        position = {(int(s), int(r)): i for i, (s, r) in enumerate(zip(segs, local))}
        for s in np.unique(segs):
            _, prow, vec = self.engine.windows(int(s), local[segs == s].tolist())
            parts.append(vec.reshape(-1, self._dim))
            owners.append(np.fromiter((position[(int(s), int(r))] for r in prow), np.int64, prow.size))
        if not parts:
            return np.zeros((0, self._dim), np.float32), np.zeros(0, np.int64)
        vec, owner = np.concatenate(parts), np.concatenate(owners)
        order = np.argsort(owner, kind="stable")  # windows of a passage stay in window order
        return vec[order], owner[order]

    def passage_scores(self, vector: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Exact MaxP inner products of one query (d,) with the passages at ``rows`` (C,) → (C,)."""
        rows = np.asarray(rows, np.int64)
        out = np.full(rows.size, -np.inf)
        if rows.size:
            vec, owner = self.vectors_of(rows)
            np.maximum.at(out, owner, (vec @ np.asarray(vector, np.float32)).astype(np.float64))
        return out

    def add(self, vectors: np.ndarray, passage_of_row: np.ndarray | None = None):
        raise InputError("a Milvus index changes through `rag add` / `rag delete` (commits), not in memory")

    def remove(self, rows: np.ndarray):
        raise InputError("a Milvus index changes through `rag add` / `rag delete` (commits), not in memory")


class MilvusBM25Store:
    """Exact BM25 top-k and row scores over the ``_bm25`` rows written for ``epoch``.

    Args:
        engine: the index's collections.
        rows: the commit's row map.
        epoch: the commit whose weights the reader expects (``MilvusSpec.bm25_epoch``).
    """

    def __init__(self, engine: MilvusCollections, rows: CommitRows, epoch: int) -> None:
        self.engine, self.rows, self.epoch = engine, rows, epoch

    def _global(self, pks: np.ndarray) -> np.ndarray:
        return self.rows.to_global(pks >> SEG_SHIFT, pks & ((1 << SEG_SHIFT) - 1))

    def top_k(self, query: dict[int, float], k: int, where: RowFilter | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Rows (≤ k,) and scores of one query's best passages (passages without a query term never),
        among those whose metadata satisfy ``where`` (its expression pushed down into the engine)."""
        expr = _expression(where, self.rows, "Milvus BM25 index")
        if not query or k < 1 or (where is not None and not where.count):
            return np.zeros(0, np.int64), np.zeros(0)
        depth = min(MAX_LIMIT, k + 1)
        while True:
            s, pks = self.engine.search_bm25([query], depth, self.epoch, where=expr)[0]
            if s.size < min(k, len(self.rows)) and expr is None:
                self.engine.check_epoch(self.epoch)  # rows rewritten by a later commit: reopen
            r, rs = _settle(s, self._global(pks), k)
            if s.size < depth or depth >= MAX_LIMIT or (r.size >= k and rs[k - 1] > s[-1]):
                return r, rs
            depth = min(MAX_LIMIT, 2 * depth)

    def scores(self, query: dict[int, float], rows: np.ndarray) -> np.ndarray:
        """Exact scores of the passages at ``rows`` (C,); 0 for those without a query term."""
        rows = np.asarray(rows, np.int64)
        out = np.zeros(rows.size)
        if not query or not rows.size:
            return out
        pks = self.rows.pks(rows)
        at = {int(p): i for i, p in enumerate(pks)}
        for start in range(0, pks.size, MAX_LIMIT):
            part = pks[start:start + MAX_LIMIT]
            s, found = self.engine.search_bm25([query], part.size, self.epoch, part)[0]
            for score, p in zip(s, found):
                out[at[int(p)]] = score
        return out
