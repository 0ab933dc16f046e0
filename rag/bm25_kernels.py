"""Compiled exact top-k BM25: block-max MaxScore over row windows, and an exhaustive accumulator (numba).

Both kernels read the scorer's precomputed postings (term-major CSR: ``indptr`` (V+1,),
``indices`` (nnz,) rows ascending within a term, ``weights`` (nnz,)) and return the same passages,
order and scores as :meth:`rag.bm25.BM25Scorer.top_k_exhaustive`, bit for bit: a passage's score is
summed over the query terms in query order, starting from 0.0, exactly as that path's ``bincount``
does (repeated terms add their weight again), and the top ``k`` is the first ``k`` by
``(-score, row)``, so ties at the k-th score go to the lowest rows.

:func:`maxscore_top_k` is MaxScore (Turtle & Flood) over windows of ``WINDOW`` rows, with block
maxima per window and per sub-block of ``SUB`` rows (Ding & Suel's block-max idea; the arrays are
built once per index by :mod:`rag.bm25_blocks`). In each window the query terms, sorted by their
bound there (largest weight in the window times the term's repeats in the query), split into
*non-essential* terms, the longest prefix whose bounds sum to less than the threshold ``θ`` (the
k-th best score so far), and *essential* ones. A window whose bounds sum to less than ``θ`` is
skipped. The essential postings are accumulated term-at-a-time into a window-sized array that
stays in the CPU cache, with a bitset of the rows they touch: only those rows can enter (the
others score below ``θ``). The non-essential lists are not read: a *dense* one (a common term,
with uint8 sub-block maxima rounded up) adds its bound in the candidate's sub-block; a short one
is summed exactly (it has few postings). Candidates are visited in ascending row order; one whose
partial sum plus those bounds stays below ``θ`` is dropped; for the others each dense term's
bound is replaced by its weight, found among the few postings of that one sub-block, and the row
is dropped as soon as the bound of what remains cannot lift it to ``θ``. Survivors are scored
exactly. Dropping needs a strict ``<`` (with a relative margin of 1e-12 for float sums taken in
another order and for the quantised bounds' rounding), so a passage that merely ties ``θ`` is
always scored and the heap's (score, row) order decides. ``θ`` starts at the k-th largest weight
of a query term when known (:func:`kth_largest`: ``k`` passages reach it) and rises with the heap.
All weights must be >= 0 (the caller checks). Against a dense (N,) scan (bm25s) this touches no
N-sized array and reads, at 1M passages, about a tenth of the query terms' postings
(docs/benchmarks.md): the common terms' long lists only where a candidate may enter.

:func:`exhaustive_top_k` accumulates every posting into a dense (N,) array, then keeps the best rows
in a k-heap; it serves queries with a negative weight (Robertson idf), where bounds do not hold.

Both kernels take ``allowed`` (N,) bool (a metadata filter's mask) or an empty array for "all
rows", run without the GIL (``nogil``) and are cached on disk (``cache=True``) after the first
compilation.

References:
    Turtle, Flood. "Query Evaluation: Strategies and Optimizations." IP&M 31(6), 1995 (MaxScore).
    Ding, Suel. "Faster Top-k Document Retrieval Using Block-Max Indexes." SIGIR 2011.
    Mallia, Suel, Tonellotto. "Faster Learned Sparse Retrieval with Block-Max Pruning." SIGIR 2024.
"""

from __future__ import annotations

import numba
import numpy as np

from rag.bm25_blocks import JIT as _JIT
from rag.bm25_blocks import SUB, WINDOW, kth_largest, sub_blocks, window_blocks

__all__ = ["exhaustive_top_k", "kth_largest", "maxscore_top_k", "sub_blocks", "window_blocks"]

_MARGIN = 1e-12  # relative slack on the bound test: float sums in another order differ by ulps
_SUBS = WINDOW // SUB  # sub-blocks per window: the words of its candidate bitset
_ONE = np.uint64(1)
_DEBRUIJN = np.uint64(0x03F79D71B4CB0A89)  # the lowest set bit of x times this, >> 58, indexes _BIT_OF
_BIT_OF = np.array([0, 1, 48, 2, 57, 49, 28, 3, 61, 58, 50, 42, 38, 29, 17, 4, 62, 55, 59, 36, 53, 51, 43, 22, 45, 39, 33, 30,
                    24, 18, 12, 5, 63, 47, 56, 27, 60, 41, 37, 16, 54, 35, 52, 21, 44, 32, 23, 11, 46, 26, 40, 15, 34, 20,
                    31, 10, 25, 14, 19, 9, 13, 8, 7, 6], dtype=np.int64)


@numba.njit(**_JIT)
def _below(s_a: float, r_a: int, s_b: float, r_b: int) -> bool:
    """Whether (s_a, r_a) ranks below (s_b, r_b): lower score, or equal score and higher row."""
    return s_a < s_b or (s_a == s_b and r_a > r_b)


@numba.njit(**_JIT)
def _sift_down(hs: np.ndarray, hr: np.ndarray, n: int, i: int) -> None:
    while True:
        c = 2 * i + 1
        if c >= n:
            return
        if c + 1 < n and _below(hs[c + 1], hr[c + 1], hs[c], hr[c]):
            c += 1
        if not _below(hs[c], hr[c], hs[i], hr[i]):
            return
        hs[i], hs[c] = hs[c], hs[i]
        hr[i], hr[c] = hr[c], hr[i]
        i = c


@numba.njit(**_JIT)
def _push(hs: np.ndarray, hr: np.ndarray, n: int, k: int, s: float, r: int) -> int:
    """Offer (s, r) to the min-heap ``hs, hr`` of the ``n <= k`` best so far (root = worst); new ``n``."""
    if n < k:
        i = n
        hs[i], hr[i] = s, r
        while i > 0:
            p = (i - 1) // 2
            if not _below(hs[i], hr[i], hs[p], hr[p]):
                break
            hs[i], hs[p] = hs[p], hs[i]
            hr[i], hr[p] = hr[p], hr[i]
            i = p
        return n + 1
    if _below(hs[0], hr[0], s, r):
        hs[0], hr[0] = s, r
        _sift_down(hs, hr, n, 0)
    return n


@numba.njit(**_JIT)
def _ranked(hs: np.ndarray, hr: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Empty the heap into (rows (n,), scores (n,)) best first."""
    rows, scores = np.empty(n, np.int64), np.empty(n, np.float64)
    for j in range(n - 1, -1, -1):
        rows[j], scores[j] = hr[0], hs[0]
        hs[0], hr[0] = hs[j], hr[j]
        _sift_down(hs, hr, j, 0)
    return rows, scores


@numba.njit(**_JIT)
def _unique_terms(term_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct terms (m,) in first-seen order, their repeats (m,), each query position's slot (L,)."""
    L = term_ids.size
    uniq, count, slot = np.empty(L, np.int64), np.zeros(L, np.int64), np.empty(L, np.int64)
    m = 0
    for j in range(L):
        t = term_ids[j]
        s = m
        for u in range(m):
            if uniq[u] == t:
                s = u
                break
        if s == m:
            uniq[m] = t
            m += 1
        count[s] += 1
        slot[j] = s
    return uniq[:m], count[:m], slot


@numba.njit(**_JIT)
def exhaustive_top_k(indptr: np.ndarray, indices: np.ndarray, weights: np.ndarray, n_docs: int,
                     term_ids: np.ndarray, k: int, allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Top ``k`` (rows, scores) of the passages containing a query term, any weight signs.

    Args:
        indptr, indices, weights: the postings (see the module docstring).
        n_docs: passages ``N``.
        term_ids: (L,) query term ids in query order, repeats allowed.
        k: results wanted (>= 1).
        allowed: (N,) bool, or (0,) for every row.

    Returns:
        (rows (k',), scores (k',)) best first, ``k' = min(k, allowed passages matching)``.
    """
    acc = np.zeros(n_docs)  # (N,)
    seen = np.zeros(n_docs, np.bool_)  # (N,) rows with a posting of a query term
    for j in range(term_ids.size):
        t = term_ids[j]
        for p in range(indptr[t], indptr[t + 1]):
            acc[indices[p]] += weights[p]
            seen[indices[p]] = True
    filtered = allowed.size > 0
    hs, hr = np.empty(k, np.float64), np.empty(k, np.int64)
    n = 0
    for r in range(n_docs):
        if n == k and acc[r] < hs[0]:  # cannot enter: skip the other tests
            continue
        if seen[r] and not (filtered and not allowed[r]):
            n = _push(hs, hr, n, k, acc[r], r)
    return _ranked(hs, hr, n)


@numba.njit(**_JIT)
def _find(indices: np.ndarray, lo: int, hi: int, d: int) -> int:
    """Position of row ``d`` in ``indices[lo:hi]`` (ascending), or -1 (binary search)."""
    while lo < hi:
        mid = (lo + hi) >> 1
        x = indices[mid]
        if x < d:
            lo = mid + 1
        elif x > d:
            hi = mid
        else:
            return mid
    return -1


@numba.njit(**_JIT)
def _sub_range(qstart: np.ndarray, d: int, sb: int, lo: int, hi: int) -> tuple[int, int]:
    """Postings ``[a, z)`` of dense table row ``d`` in sub-block ``sb``, its window's block being ``[lo, hi)``."""
    return lo + qstart[d, sb], (lo + qstart[d, sb + 1]) if (sb + 1) % _SUBS else hi


@numba.njit(**_JIT)
def maxscore_top_k(indices: np.ndarray, weights: np.ndarray, bptr: np.ndarray, bwin: np.ndarray, bstart: np.ndarray,
                   bmax: np.ndarray, slot_of: np.ndarray, qmax: np.ndarray, qstart: np.ndarray, upper: np.ndarray,
                   seed: np.ndarray, term_ids: np.ndarray, k: int, allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact top ``k`` by block-max MaxScore over windows; every weight of the query terms must be >= 0.

    Args:
        indices, weights: the postings (see the module docstring).
        bptr, bwin, bstart, bmax: the window blocks of :func:`window_blocks`.
        slot_of, qmax, qstart: the dense terms' sub-block tables of :func:`sub_blocks`.
        upper: (V,) each term's largest weight (the tables' quantisation scale, ``upper / 255``).
        seed: (V,) for each term a score that ``k`` allowed passages are known to reach (the
            k-th largest weight of the term, :func:`kth_largest`), or (0,) when none is known.
        term_ids: (L,) query term ids in query order, repeats allowed.
        k: results wanted (>= 1).
        allowed: (N,) bool, or (0,) for every row.

    Returns:
        (rows (k',), scores (k',)) best first, as :func:`exhaustive_top_k` returns them.
    """
    uniq, count, slot = _unique_terms(term_ids)
    m = uniq.size
    theta = -np.inf  # the threshold θ: a passage must beat it to enter
    if seed.size:
        for i in range(m):
            theta = max(theta, seed[uniq[i]])
    bcur, bend, cnt = np.empty(m, np.int64), np.empty(m, np.int64), np.empty(m)
    dense, dscale = np.empty(m, np.int64), np.empty(m)  # table row (-1: none) and bound per quantum
    for i in range(m):
        t = uniq[i]
        bcur[i], bend[i], cnt[i] = bptr[t], bptr[t + 1], count[i]
        dense[i], dscale[i] = slot_of[t], upper[t] / 255.0 * count[i]
    W = WINDOW
    acc = np.zeros(W)  # (W,) essential partial scores of the window's rows
    bits = np.zeros(_SUBS, np.uint64)  # (W/64,) bitset of the window's rows with an essential posting
    nacc = np.zeros(W)  # (W,) sums of the short non-essential lists
    ub = np.zeros(_SUBS)  # (W/64,) bound of the dense non-essential terms in each sub-block
    lo, hi = np.empty(m, np.int64), np.empty(m, np.int64)  # each list's postings in the window
    local = np.empty(m)  # each term's bound in this window (0 where it has no posting there)
    ordr = np.empty(m, np.int64)  # terms by ascending local bound: non-essential ones first
    prefix = np.empty(m)  # sums of local bounds along ordr
    look = np.empty(m, np.int64)  # the window's dense non-essential terms, largest bound first
    w = np.zeros(m)  # one passage's weight of each term
    filtered = allowed.size > 0
    hs, hr = np.empty(k, np.float64), np.empty(k, np.int64)
    n = 0
    while True:
        win = -1  # the next window any query term has postings in
        for i in range(m):
            if bcur[i] < bend[i] and (win < 0 or bwin[bcur[i]] < win):
                win = bwin[bcur[i]]
        if win < 0:
            break
        total = 0.0
        for i in range(m):
            local[i], lo[i], hi[i] = 0.0, 0, 0
            if bcur[i] < bend[i] and bwin[bcur[i]] == win:
                b = bcur[i]
                local[i], lo[i], hi[i] = bmax[b] * cnt[i], bstart[b], bstart[b + 1]
                bcur[i] = b + 1
            total += local[i]
        if total * (1.0 + _MARGIN) < theta:  # no passage of this window can enter
            continue
        for i in range(m):  # insertion sort by local bound (m is a query's length)
            j = i
            while j > 0 and local[ordr[j - 1]] > local[i]:
                ordr[j] = ordr[j - 1]
                j -= 1
            ordr[j] = i
        run = 0.0
        for j in range(m):
            run += local[ordr[j]]
            prefix[j] = run
        p = 0  # ordr[:p] are non-essential here: their bounds sum to less than θ
        while p < m and prefix[p] * (1.0 + _MARGIN) < theta:
            p += 1
        base, sb0 = win * W, win * _SUBS
        for j in range(p, m):  # essential: accumulate the window's postings (term-at-a-time)
            i = ordr[j]
            ci = cnt[i]
            for c in range(lo[i], hi[i]):
                r = indices[c] - base
                acc[r] += weights[c] * ci
                bits[r >> 6] |= _ONE << np.uint64(r & 63)
        nlook, short = 0, 0
        ub[:] = 0.0
        for j in range(p - 1, -1, -1):  # non-essential: dense ones bound per sub-block, short ones summed
            i = ordr[j]
            if hi[i] == lo[i]:
                continue
            d = dense[i]
            if d >= 0:
                look[nlook] = i
                nlook += 1
                for g in range(_SUBS):
                    ub[g] += qmax[d, sb0 + g] * dscale[i]
                continue
            short += hi[i] - lo[i]
            ci = cnt[i]
            for c in range(lo[i], hi[i]):
                nacc[indices[c] - base] += weights[c] * ci
        for word in range(_SUBS):  # the candidates in ascending row order
            x = bits[word]
            if x == 0:
                continue
            bits[word] = 0
            sb = sb0 + word
            while x:
                low = x & (~x + _ONE)
                x ^= low
                r = word * 64 + _BIT_OF[(low * _DEBRUIJN) >> np.uint64(58)]
                s = acc[r] + nacc[r]
                acc[r] = 0.0
                rest = ub[word]
                if (s + rest) * (1.0 + _MARGIN) < theta:
                    continue
                row = base + r
                if filtered and not allowed[row]:
                    continue
                for a in range(nlook):  # dense non-essential terms: the weight in place of the bound
                    i = look[a]
                    bound = qmax[dense[i], sb] * dscale[i]
                    if bound == 0.0:
                        continue
                    c0, c1 = _sub_range(qstart, dense[i], sb, lo[i], hi[i])
                    at = _find(indices, c0, c1, row)
                    rest -= bound
                    if at >= 0:
                        s += weights[at] * cnt[i]
                    if (s + rest) * (1.0 + _MARGIN) < theta:
                        break
                if (s + rest) * (1.0 + _MARGIN) < theta:
                    continue
                for i in range(m):  # every term's weight, found within the sub-block where it is dense
                    c0, c1 = lo[i], hi[i]
                    if dense[i] >= 0 and c1 > c0:
                        c0, c1 = _sub_range(qstart, dense[i], sb, c0, c1)
                    at = _find(indices, c0, c1, row)
                    w[i] = weights[at] if at >= 0 else 0.0
                score = 0.0
                for q in range(slot.size):  # query order from 0.0: the exhaustive path's sum, bit for bit
                    score += w[slot[q]]
                n = _push(hs, hr, n, k, score, row)
                if n == k and hs[0] > theta:
                    theta = hs[0]
        if short > W // 4:  # clear the short lists' sums for the next window: all at once, or where written
            nacc[:] = 0.0
        elif short:
            for j in range(p):
                i = ordr[j]
                if dense[i] < 0:
                    for c in range(lo[i], hi[i]):
                        nacc[indices[c] - base] = 0.0
    return _ranked(hs, hr, n)
