"""Exact top-k BM25 with MaxScore dynamic pruning over per-term score upper bounds.

BM25 is a sum of non-negative per-term contributions, so a passage that contains none of a
query's high-bound terms can score at most the sum of the other terms' upper bounds
``U_t = max_d w(t, d)``. MaxScore (Turtle & Flood 1995) splits the query terms, sorted by
``U_t`` descending, into *essential* terms, whose posting lists are scanned, and *non-essential*
ones, whose bounds sum to less than a threshold ``θ`` that the current k-th best score is known to
reach. No passage outside the essential lists can then enter the top ``k``; the non-essential
terms are only looked up (binary search) for the candidates, never scanned. With long posting
lists for common words ("effect", "cell") this skips most of the work at scale.

Here ``θ`` is the k-th best *partial* score (essential terms only) of the candidates: a lower
bound on their full scores, since the remaining contributions are >= 0. A term is made essential
one at a time, highest bound first, until ``Σ_{non-essential} U_t < θ`` holds strictly, with a
relative margin of 1e-12 for rounding; otherwise every term ends up essential and the search is
exhaustive. Results are therefore exact: the same passages and scores as a full scan, equal scores
ordered by row. Every passage accumulates its terms in one fixed order, so passages with equal
term statistics get bit-identical scores and ties stay ties.

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
    acc = np.zeros(n_docs)  # (N,) partial scores; only candidate rows are ever read
    lists: list[np.ndarray] = []
    candidates = np.zeros(0, np.int64)
    n_essential = terms.size
    for i, (t, c) in enumerate(zip(terms, counts)):
        s, e = indptr[t], indptr[t + 1]
        acc[indices[s:e]] += weights[s:e] * c if c > 1 else weights[s:e]  # rows are distinct within a list
        lists.append(indices[s:e])
        if i + 1 == terms.size:
            break
        if rest[i] * (1 + _MARGIN) >= bound[: i + 1].sum():
            continue  # θ cannot exceed the processed bounds yet: no test needed
        candidates = np.unique(np.concatenate(lists))
        lists = [candidates]
        if candidates.size >= k:
            partial = acc[candidates]
            theta = partial[np.argpartition(-partial, k - 1)[k - 1]]
            if rest[i] * (1 + _MARGIN) < theta:
                n_essential = i + 1
                break
    if n_essential == terms.size:
        candidates = np.unique(np.concatenate(lists))
        return select_top_k(candidates, acc[candidates], k)
    for t, c in zip(terms[n_essential:], counts[n_essential:]):  # non-essential: look up, never scan
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
