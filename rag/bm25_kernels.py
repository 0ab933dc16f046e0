"""Compiled exact top-k BM25: document-at-a-time MaxScore and an exhaustive accumulator (numba).

Both kernels read the scorer's precomputed postings (term-major CSR: ``indptr`` (V+1,),
``indices`` (nnz,) rows ascending within a term, ``weights`` (nnz,)) and return the same passages,
order and scores as :meth:`rag.bm25.BM25Scorer.top_k_exhaustive`, bit for bit: a passage's score is
summed over the query terms in query order, starting from 0.0, exactly as that path's ``bincount``
does (repeated terms add their weight again), and the top ``k`` is the first ``k`` by
``(-score, row)``, so ties at the k-th score go to the lowest rows.

:func:`maxscore_top_k` walks the passages in row order (document-at-a-time). The query terms,
sorted by their bound ``U_t`` (largest posting weight times the term's repeats in the query),
split into *non-essential* terms, the longest prefix of small bounds whose sum is below the
threshold ``θ`` (the k-th best score so far), and *essential* ones. Only the essential lists are
merged; a passage found there is completed by looking its row up in the non-essential lists
(galloping search from a cursor that only moves forward), from the largest bound down, and dropped
as soon as its partial score plus the bounds still unread is below ``θ``. As ``θ`` rises, terms move
to the non-essential side; when every term is non-essential no further passage can enter.
Passages are visited in ascending row order, so one that merely equals ``θ`` can never enter
(an earlier row holds the tie): dropping on a strict ``<`` (with a relative margin of 1e-12 for
float sums taken in another order) is exact. All weights must be >= 0 (the caller checks).

:func:`exhaustive_top_k` accumulates every posting into a dense (N,) array, and serves small
corpora (where pruning does not pay) and queries with negative weights (Robertson idf).

Both kernels take ``allowed`` (N,) bool (a metadata filter's mask) or an empty array for "all
rows", run without the GIL (``nogil``) and are cached on disk (``cache=True``) after the first
compilation.

References:
    Turtle, Flood. "Query Evaluation: Strategies and Optimizations." IP&M 31(6), 1995 (MaxScore).
    Mallia, Siedlaczek, Suel. "An Experimental Study of Index Compression and DAAT Query
    Processing Methods." ECIR 2019 (document-at-a-time MaxScore as used by PISA).
"""

from __future__ import annotations

import numba
import numpy as np

_MARGIN = 1e-12  # relative slack on the bound test: float sums in another order differ by ulps
_JIT = {"cache": True, "nogil": True}
_WINDOW = 4096  # rows scored together by MaxScore: its accumulator (32 KiB) stays in the CPU cache
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
    seen = np.zeros(n_docs, np.int8)  # (N,) 1 once a row has a posting
    total = 0
    for j in range(term_ids.size):
        total += indptr[term_ids[j] + 1] - indptr[term_ids[j]]
    touched = np.empty(total, np.int64)
    n_touched = 0
    for j in range(term_ids.size):
        t = term_ids[j]
        for p in range(indptr[t], indptr[t + 1]):
            r = indices[p]
            acc[r] += weights[p]
            touched[n_touched] = r
            n_touched += 1 - np.int64(seen[r])  # branch-free: a row is listed on its first posting only
            seen[r] = 1
    filtered = allowed.size > 0
    hs, hr = np.empty(k, np.float64), np.empty(k, np.int64)
    n = 0
    for i in range(n_touched):
        r = touched[i]
        if filtered and not allowed[r]:
            continue
        n = _push(hs, hr, n, k, acc[r], r)
    return _ranked(hs, hr, n)


@numba.njit(**_JIT)
def _advance(indices: np.ndarray, lo: int, end: int, d: int) -> int:
    """First position in ``indices[lo:end]`` (ascending) holding a row >= ``d`` (galloping search)."""
    if lo >= end or indices[lo] >= d:
        return lo
    step = 1
    hi = lo + 1
    while hi < end and indices[hi] < d:  # invariant: indices[lo] < d
        lo = hi
        step *= 2
        hi = lo + step
    if hi > end:
        hi = end
    while hi - lo > 1:  # indices[lo] < d <= indices[hi] (or hi == end)
        mid = (lo + hi) // 2
        if indices[mid] < d:
            lo = mid
        else:
            hi = mid
    return hi


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
def maxscore_top_k(indptr: np.ndarray, indices: np.ndarray, weights: np.ndarray, upper: np.ndarray,
                   term_ids: np.ndarray, k: int, allowed: np.ndarray, theta0: float) -> tuple[np.ndarray, np.ndarray]:
    """Exact top ``k`` by windowed MaxScore; every weight of the query terms must be >= 0.

    Args:
        indptr, indices, weights: the postings (see the module docstring).
        upper: (V,) largest posting weight of each term.
        term_ids: (L,) query term ids in query order, repeats allowed.
        k: results wanted (>= 1).
        allowed: (N,) bool, or (0,) for every row.
        theta0: a score that at least ``k`` allowed passages are known to reach (``-inf`` if none
            is known), e.g. the k-th largest weight of one query term (:func:`kth_largest`).

    Returns:
        (rows (k',), scores (k',)) best first, as :func:`exhaustive_top_k` returns them.
    """
    uniq, count, slot = _unique_terms(term_ids)
    m = uniq.size
    bound = np.empty(m)
    for i in range(m):
        bound[i] = upper[uniq[i]] * count[i]
    order = np.argsort(bound, kind="mergesort")  # ascending bounds: non-essential terms are a prefix
    pos_of = np.empty(m, np.int64)  # slot -> position in bound order
    cur, end, prefix, cnt = np.empty(m, np.int64), np.empty(m, np.int64), np.empty(m), np.empty(m)
    total = 0.0
    for i in range(m):
        u = order[i]
        pos_of[u] = i
        cur[i], end[i] = indptr[uniq[u]], indptr[uniq[u] + 1]
        cnt[i] = count[u]
        total += bound[u]
        prefix[i] = total  # sum of the bounds of terms 0..i in bound order
    qpos = np.empty(term_ids.size, np.int64)
    for j in range(term_ids.size):
        qpos[j] = pos_of[slot[j]]
    W = _WINDOW
    acc = np.zeros(W)  # (W,) essential partial scores of the window's rows
    bits = np.zeros(W // 64, np.uint64)  # (W/64,) bitset of the window's rows with an essential posting
    first = np.empty(m, np.int64)  # each list's first posting in the window (cur: one past its last)
    probe = np.empty(m, np.int64)  # non-essential lists: a cursor moving forward through the window
    w = np.zeros(m)  # one passage's weight of each term (bound order)
    filtered = allowed.size > 0
    hs, hr = np.empty(k, np.float64), np.empty(k, np.int64)
    n = 0
    theta = theta0
    p = 0  # terms 0..p-1 are non-essential
    while p < m and prefix[p] * (1.0 + _MARGIN) < theta:
        p += 1
    while p < m:
        d = -1  # the window to score: the one holding the smallest row under an essential cursor
        for i in range(p, m):
            if cur[i] < end[i] and (d < 0 or indices[cur[i]] < d):
                d = indices[cur[i]]
        if d < 0:
            break
        base = d - d % W
        for i in range(p, m):  # essential: accumulate the window's postings (term-at-a-time)
            c, e, ci = cur[i], end[i], cnt[i]
            first[i] = c
            while c < e:
                r = indices[c] - base
                if r >= W:
                    break
                acc[r] += weights[c] * ci
                bits[r >> 6] |= _ONE << np.uint64(r & 63)
                c += 1
            cur[i] = c
        for i in range(p):  # non-essential: only locate the window's slice of each list
            first[i] = _advance(indices, cur[i], end[i], base)
            probe[i] = first[i]
            cur[i] = _advance(indices, first[i], end[i], base + W)
        for word in range(W // 64):  # the candidates in ascending row order
            x = bits[word]
            bits[word] = 0
            while x:
                low = x & (~x + _ONE)
                x ^= low
                r = word * 64 + _BIT_OF[(low * _DEBRUIJN) >> np.uint64(58)]
                s = acc[r]
                acc[r] = 0.0
                row = base + r
                if filtered and not allowed[row]:
                    continue
                alive = True
                for i in range(p - 1, -1, -1):  # non-essential, largest bound first, while the row can still enter
                    if (s + prefix[i]) * (1.0 + _MARGIN) < theta:
                        alive = False
                        break
                    at = _advance(indices, probe[i], cur[i], row)
                    probe[i] = at
                    w[i] = weights[at] if at < cur[i] and indices[at] == row else 0.0
                    s += w[i] * cnt[i]
                if not alive or s * (1.0 + _MARGIN) < theta:
                    continue
                for i in range(p, m):
                    at = _find(indices, first[i], cur[i], row)
                    w[i] = weights[at] if at >= 0 else 0.0
                score = 0.0
                for q in range(qpos.size):  # query order from 0.0: the exhaustive path's sum, bit for bit
                    score += w[qpos[q]]
                n = _push(hs, hr, n, k, score, row)
                if n == k and hs[0] > theta:
                    theta = hs[0]
        while p < m and prefix[p] * (1.0 + _MARGIN) < theta:
            p += 1
    return _ranked(hs, hr, n)


@numba.njit(**_JIT)
def kth_largest(indptr: np.ndarray, weights: np.ndarray, K: int) -> np.ndarray:
    """(V,) the ``K``-th largest posting weight of each term (``-inf`` where it has fewer postings).

    ``K`` passages score at least this much for any query holding the term (weights >= 0): a
    starting threshold for :func:`maxscore_top_k` with ``k <= K``. One pass over the postings,
    keeping the ``K`` largest in a small sorted buffer.
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
