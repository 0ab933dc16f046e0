"""The pruning arrays of the compiled BM25 top-k (numba): window blocks, sub-block maxima, k-th weights.

Built once per index from the scorer's postings (term-major CSR: ``indptr`` (V+1,), ``indices``
(nnz,) rows ascending within a term, ``weights`` (nnz,)) on the first pruned query, and read by
:func:`rag.bm25_kernels.maxscore_top_k`:

* :func:`window_blocks`: each posting list cut at window boundaries (``WINDOW`` rows), with the
  largest weight of each piece (Ding & Suel's block maxima, at window granularity).
* :func:`sub_blocks`: for the *dense* terms (at least ``min_df`` postings), the largest weight in
  every sub-block of ``SUB`` rows, quantised to uint8 and rounded *up* (``q = ceil(w / s)`` with
  ``s = upper / 255``, so ``q·s >= w`` up to one rounding), and where each sub-block's postings
  start within its window's piece (uint16). These bound a passage's score by the sub-block it lies
  in, far tighter than the term's global maximum, and find its posting without a search of the list.
* :func:`kth_largest`: each term's k-th largest weight, a starting threshold.

References:
    Ding, Suel. "Faster Top-k Document Retrieval Using Block-Max Indexes." SIGIR 2011.
    Mallia, Suel, Tonellotto. "Faster Learned Sparse Retrieval with Block-Max Pruning." SIGIR 2024
    (fixed-size row blocks with quantised per-block maxima).
"""

from __future__ import annotations

import numba
import numpy as np

JIT = {"cache": True, "nogil": True}
WINDOW = 4096  # rows scored together by MaxScore: its accumulator (32 KiB) stays in the CPU cache
SUB = 64  # rows per sub-block: one 64-bit word of the window's candidate bitset
_SUBS = WINDOW // SUB


@numba.njit(**JIT)
def window_blocks(indptr: np.ndarray, indices: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Split every posting list at window boundaries (``WINDOW`` rows) and record each piece's maximum.

    Returns:
        ``bptr`` (V+1,) each term's blocks ``bptr[t]:bptr[t+1]``; ``bwin`` (B,) int32 window of a
        block (rows ``bwin·W .. bwin·W+W-1``); ``bstart`` (B+1,) first posting of each block (the
        last entry: ``nnz``); ``bmax`` (B,) largest weight in the block.
    """
    V = indptr.size - 1
    bptr = np.zeros(V + 1, np.int64)
    for t in range(V):
        nb, last = 0, -1
        for p in range(indptr[t], indptr[t + 1]):
            wn = indices[p] // WINDOW
            if wn != last:
                nb += 1
                last = wn
        bptr[t + 1] = bptr[t] + nb
    B = bptr[V]
    bwin, bstart, bmax = np.empty(B, np.int32), np.empty(B + 1, np.int64), np.empty(B)
    bstart[B] = indptr[V]
    j = -1
    for t in range(V):
        last = -1
        for p in range(indptr[t], indptr[t + 1]):
            wn = indices[p] // WINDOW
            if wn != last:
                j += 1
                last = wn
                bwin[j], bstart[j], bmax[j] = wn, p, weights[p]
            elif weights[p] > bmax[j]:
                bmax[j] = weights[p]
    return bptr, bwin, bstart, bmax


@numba.njit(**JIT)
def sub_blocks(indptr: np.ndarray, indices: np.ndarray, weights: np.ndarray, upper: np.ndarray, n_docs: int,
               min_df: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Quantised sub-block maxima and sub-block starts of the dense terms.

    Args:
        indptr, indices, weights: the postings.
        upper: (V,) each term's largest weight (:func:`rag.bm25_pruning.term_bounds`).
        n_docs: passages ``N``.
        min_df: terms with at least this many postings (and ``upper / 255 > 0``) are dense.

    Returns:
        ``slot`` (V,) int32 each term's row in the tables, -1 for the others; ``qmax`` (D, S)
        uint8 with ``S = ⌈N / WINDOW⌉ · WINDOW / SUB``: ``qmax·upper/255 >=`` every weight of
        the sub-block (up to rounding), 0 where the term has no posting there; ``start`` (D, S)
        uint16: where the sub-block's postings begin, counted from the first posting of its
        window's block (those after the window's last posting: at its end; windows without a
        posting of the term: 0, never read).
    """
    V = indptr.size - 1
    slot = np.full(V, -1, np.int32)
    D = 0
    for t in range(V):
        if indptr[t + 1] - indptr[t] >= min_df and upper[t] / 255.0 > 0.0:  # a scale of 0 (subnormal upper) cannot quantise
            slot[t] = D
            D += 1
    S = (n_docs + WINDOW - 1) // WINDOW * _SUBS
    qmax, start = np.zeros((D, S), np.uint8), np.zeros((D, S), np.uint16)
    for t in range(V):
        d = slot[t]
        if d < 0:
            continue
        scale = upper[t] / 255.0
        first, win, last_sub = 0, -1, -1
        for p in range(indptr[t], indptr[t + 1] + 1):
            r = indices[p] if p < indptr[t + 1] else -1
            if r // WINDOW != win or r < 0:
                if win >= 0:  # the sub-blocks after the window's last posting start at its end
                    for sb in range(last_sub + 1, (win + 1) * _SUBS):
                        start[d, sb] = p - first
                if r < 0:
                    break
                win, first, last_sub = r // WINDOW, p, r // WINDOW * _SUBS - 1
            sb = r // SUB
            while last_sub < sb:  # this posting opens every sub-block since the previous one
                last_sub += 1
                start[d, last_sub] = p - first
            q = min(max(np.ceil(weights[p] / scale), 0.0), 255.0)
            if q > qmax[d, sb]:
                qmax[d, sb] = np.uint8(q)
    return slot, qmax, start


@numba.njit(**JIT)
def kth_largest(indptr: np.ndarray, weights: np.ndarray, K: int) -> np.ndarray:
    """(V,) the ``K``-th largest posting weight of each term (``-inf`` where it has fewer postings).

    ``K`` passages score at least this much for any query holding the term (weights >= 0): a
    starting threshold for :func:`rag.bm25_kernels.maxscore_top_k` with ``k <= K``. One pass over
    the postings, keeping the ``K`` largest in a small sorted buffer.
    """
    V = indptr.size - 1
    out = np.full(V, -np.inf)
    best = np.empty(K)  # ascending: best[0] is the K-th largest so far
    for t in range(V):
        s, e = indptr[t], indptr[t + 1]
        if e - s < K:
            continue
        for j in range(K):
            best[j] = weights[s + j]
        best.sort()
        for p in range(s + K, e):
            x = weights[p]
            if x <= best[0]:
                continue
            j = 0
            while j + 1 < K and best[j + 1] < x:
                best[j] = best[j + 1]
                j += 1
            best[j] = x
        out[t] = best[0]
    return out
