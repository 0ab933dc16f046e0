"""Exact top-k BM25 with MaxScore dynamic pruning over per-term score upper bounds.

BM25 is a sum of non-negative per-term contributions, so a passage that contains none of a
query's high-bound terms can score at most the sum of the other terms' upper bounds
``U_t = max_d w(t, d)``. MaxScore (Turtle & Flood 1995) splits the query terms, sorted by
``U_t`` descending, into *essential* terms, whose posting lists are scanned, and *non-essential*
ones, whose bounds sum to less than a threshold ``θ`` that the current k-th best score is known to
reach. No passage outside the essential lists can then enter the top ``k``; the non-essential
terms are only looked up (binary search) for the candidates, never scanned. With long posting
lists for common words ("effect", "cell") this skips most of the work at scale.

The first ``θ`` is the k-th largest weight in the highest-bound term's own posting list (k
passages score at least that much): the essential terms are the shortest prefix, by bound, whose
complement's bounds sum to less than ``θ`` (strictly, with a relative margin of 1e-12 for
rounding); if there is none every term is essential and the search is exhaustive. After the
essential lists are scanned, ``θ`` rises to the k-th best *partial* score of the candidates (a
lower bound on their full scores, since the remaining contributions are >= 0), and candidates
whose partial score plus the non-essential bounds stays below it are dropped before any look-up.
Results are therefore exact: the same passages as a full scan, equal scores ordered by row. The
scores equal the full scan's up to rounding (within (m + 2)·2⁻⁵² relative for m query terms): a
passage's terms are added largest bound first here, in query order there. Every passage
accumulates its terms in one fixed order, so passages with equal term statistics get
bit-identical scores and ties stay ties.

Negative weights (Robertson idf for terms in more than half of the passages) break the bound
argument; such queries take the exhaustive path (``top_k`` returns ``None``).

References:
    Turtle, Flood. "Query Evaluation: Strategies and Optimizations." IP&M 31(6), 1995 (MaxScore).
    Ding, Suel. "Faster Top-k Document Retrieval Using Block-Max Indexes." SIGIR 2011.
"""

from __future__ import annotations

import numpy as np

_MARGIN = 1e-12  # relative slack on the bound test: float sums in another order differ by ulps


def term_bounds(indptr: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(V,) largest and (V,) smallest weight of each term's postings (0 for empty lists)."""
    df = np.diff(indptr)  # (V,)
    upper, lower = np.zeros(df.size), np.zeros(df.size)
    nonempty = np.flatnonzero(df)
    if nonempty.size:
        starts = indptr[nonempty]
        upper[nonempty] = np.maximum.reduceat(weights, starts)
        lower[nonempty] = np.minimum.reduceat(weights, starts)
    return upper, lower


def select_top_k(rows: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best of distinct ascending ``rows`` by (-score, row), best first."""
    k = min(k, rows.size)
    if k < rows.size:
        kth = scores[np.argpartition(-scores, k - 1)[k - 1]]  # the k-th largest score
        above = np.flatnonzero(scores > kth)
        ties = np.flatnonzero(scores == kth)[: k - above.size]  # lowest rows first (rows ascend)
        pick = np.concatenate([above, ties])
    else:
        pick = np.arange(rows.size)
    order = np.lexsort((rows[pick], -scores[pick]))
    pick = pick[order]
    return rows[pick], scores[pick]


def maxscore_top_k(indptr: np.ndarray, indices: np.ndarray, weights: np.ndarray, upper: np.ndarray,
                   lower: np.ndarray, n_docs: int, term_ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Rows and scores of the ``k`` best passages containing a query term, or ``None`` if not prunable.

    Args:
        indptr: (V+1,) term-major CSR offsets; indices: (nnz,) rows, ascending within a term.
        weights: (nnz,) BM25 weight of each posting; upper / lower: (V,) :func:`term_bounds`.
        n_docs: passages ``N``.
        term_ids: query term ids, repeats allowed (a repeated term counts that many times).
        k: results wanted (>= 1).

    Returns:
        ``(rows (k',), scores (k',))`` best first, ``k' = min(k, passages matching)``; ``None``
        when a query term has a negative weight (the caller scans exhaustively).
    """
    terms, counts = np.unique(term_ids, return_counts=True)
    if lower[terms].min() < 0:
        return None
    bound = upper[terms] * counts  # (m,) most a term adds to any passage
    order = np.argsort(-bound, kind="stable")
    terms, counts, bound = terms[order], counts[order], bound[order]
    rest = np.concatenate([np.cumsum(bound[::-1])[::-1][1:], [0.0]])  # (m,) bound of the terms after each
    # θ0: the k-th largest weight in the highest-bound term's list: k passages score at least that.
    s, e = indptr[terms[0]], indptr[terms[0] + 1]
    theta = np.partition(weights[s:e], e - s - k)[e - s - k] * counts[0] if e - s >= k else -np.inf
    n_ess = int(np.argmax(rest * (1 + _MARGIN) < theta)) + 1 if rest[-1] * (1 + _MARGIN) < theta else terms.size
    n_ess = max(n_ess, 1)
    acc = np.zeros(n_docs)  # (N,) partial scores; only candidate rows are ever read
    lists = []
    for t, c in zip(terms[:n_ess], counts[:n_ess]):  # essential: scan
        s, e = indptr[t], indptr[t + 1]
        acc[indices[s:e]] += weights[s:e] * c if c > 1 else weights[s:e]  # rows are distinct within a list
        lists.append(indices[s:e])
    if len(lists) == 1:
        candidates = lists[0]
    elif sum(x.size for x in lists) * 16 < n_docs:
        candidates = np.unique(np.concatenate(lists))
    else:
        mask = np.zeros(n_docs, dtype=bool)
        for x in lists:
            mask[x] = True
        candidates = np.flatnonzero(mask)
    if n_ess < terms.size and candidates.size > k:
        # θ: the k-th best partial score; a candidate that cannot reach it even with every
        # non-essential term at its bound is dropped before any look-up.
        partial = acc[candidates]
        theta = max(theta, partial[np.argpartition(-partial, k - 1)[k - 1]])
        candidates = candidates[(partial + rest[n_ess - 1]) * (1 + _MARGIN) >= theta]
    for t, c in zip(terms[n_ess:], counts[n_ess:]):  # non-essential: look up, never scan
        s, e = indptr[t], indptr[t + 1]
        if e - s <= 4 * candidates.size:  # short list: scanning it is cheaper than bisecting
            acc[indices[s:e]] += weights[s:e] * c if c > 1 else weights[s:e]
            continue
        posting = indices[s:e]
        pos = np.minimum(np.searchsorted(posting, candidates), e - s - 1)
        hit = posting[pos] == candidates
        w = weights[s + pos[hit]]
        acc[candidates[hit]] += w * c if c > 1 else w
    return select_top_k(candidates, acc[candidates], k)
