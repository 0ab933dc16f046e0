"""BM25 scoring: the variants of Kamphuis et al. as pure functions, and a vectorised scorer.

BM25 scores a passage ``d`` for query terms ``q`` as ``Σ_{t∈q} idf(t) · tfc(tf_{t,d}, dl_d)``
with ``N`` passages, ``df`` passages containing ``t``, term frequency ``tf``, passage length
``dl`` and mean length ``avgdl``. The variants differ only in ``idf`` and ``tfc``:

==========  ====================================  ===============================================
variant     idf(t)                                tfc(tf, dl)
==========  ====================================  ===============================================
robertson   log((N-df+.5)/(df+.5))                tf / (tf + k1·(1-b+b·dl/avgdl))
lucene      log(1 + (N-df+.5)/(df+.5))            tf / (tf + k1·(1-b+b·dl/avgdl))
atire       log(N/df)                             (k1+1)·tf / (tf + k1·(1-b+b·dl/avgdl))
bm25l       log((N+1)/(df+.5))                    (k1+1)(c+δ)/(k1+c+δ), c = tf/(1-b+b·dl/avgdl)
bm25+       log((N+1)/df)                         (k1+1)·tf / (tf + k1·(1-b+b·dl/avgdl)) + δ
okapi       robertson's, negatives → ε·mean(idf)  atire's
==========  ====================================  ===============================================

``okapi`` reproduces rank-bm25's ``BM25Okapi`` exactly, including its floor for negative idf.
For bm25l and bm25+ a term contributes ``idf·tfc(0, ·)`` even where ``tf = 0`` (as in rank-bm25
and bm25s); that part is one constant per term, added to every passage, and does not change the
ranking.

References:
    Kamphuis, de Vries, Boytsov, Lin. "Which BM25 Do You Mean? A Large-Scale Reproducibility
    Study of Scoring Variants." ECIR 2020.
    Lù. "BM25S: Orders of magnitude faster lexical search via eager sparse scoring." 2024 —
    the eager scoring used here: weights are computed once per (term, passage) at load time,
    so a query is a gather-and-sum over a few sparse rows.
"""

from __future__ import annotations

import threading

import numpy as np

from indexes.bm25_store import BM25Data, BM25Postings
from indexes.manifest import BM25Spec
from rag.bm25_pruning import maxscore_top_k, term_bounds
from rag.compat import numba as numba_compat

_EVERY_ROW = np.zeros(0, dtype=bool)  # the compiled kernels' "no filter"
_NO_SEED = np.zeros(0)
_SEED_K = 10  # depths up to this start MaxScore from each term's 10th-largest weight (rag search's default k)
_DENSE_ROWS = 32  # terms in >= 1/32 of the passages (~2 postings per 64 rows) get sub-block maxima (best of 8-128 at 60k-1M)
_DENSE_MIN_DOCS = 100_000  # below this, summing the common lists beats bounding them (measured at 5k-200k passages)


def idf(variant: str, N: int, df: np.ndarray, epsilon: float = 0.25) -> np.ndarray:
    """Inverse document frequency of each term for ``variant`` (array over the vocabulary)."""
    df = df.astype(np.float64)
    if variant == "lucene":
        return np.log1p((N - df + 0.5) / (df + 0.5))
    if variant == "atire":
        return np.log(N / df)
    if variant == "bm25l":
        return np.log((N + 1) / (df + 0.5))
    if variant == "bm25+":
        return np.log((N + 1) / df)
    w = np.log((N - df + 0.5) / (df + 0.5))  # robertson, okapi
    if variant == "okapi":
        # rank-bm25: idf < 0 is replaced by ε times the mean idf over the whole vocabulary.
        w = np.where(w < 0, epsilon * (w.mean() if w.size else 0.0), w)  # an empty vocabulary has no mean
    return w


def tfc(variant: str, tf: np.ndarray, dl: np.ndarray, avgdl: float, k1: float, b: float, delta: float) -> np.ndarray:
    """Term-frequency component for ``variant``, elementwise over matching ``tf`` and ``dl``."""
    tf = tf.astype(np.float64)
    norm = 1.0 - b + b * dl / avgdl  # length normalisation
    if variant in ("lucene", "robertson"):
        return tf / (tf + k1 * norm)
    if variant in ("atire", "okapi"):
        return tf * (k1 + 1) / (tf + k1 * norm)
    if variant == "bm25l":
        c = tf / norm
        return (k1 + 1) * (c + delta) / (k1 + c + delta)
    if variant == "bm25+":
        return tf * (k1 + 1) / (tf + k1 * norm) + delta
    raise ValueError(f"unknown BM25 variant {variant!r}")


class BM25Scorer:
    """Eagerly computed BM25 weights and a fast top-k search over them.

    Args:
        data: term frequencies of the corpus: a :class:`BM25Data` (scipy matrix) or the stored
            arrays as read for searching (:class:`BM25Postings`, which needs no scipy).
        params: variant, ``k1``, ``b``, ``δ``, ``ε``.
        prune_min_docs: corpora of at least this many passages use MaxScore pruning in
            :meth:`top_k`; smaller ones scan exhaustively, which is faster there (SciFact, 5k
            passages: 2,544 vs 1,655 queries/s; docs/benchmarks.md). 0 always prunes.

    Example:
        >>> data = BM25Data.from_token_lists([["a", "b"], ["b", "c", "c"]])
        >>> s = BM25Scorer(data, BM25Spec(variant="atire", k1=1.2, b=0.75))
        >>> # "c": N=2, df=1, idf=ln 2; passage 2: tf=2, dl=3, avgdl=2.5, norm=.25+.75*3/2.5=1.15
        >>> # tfc = 2*2.2/(2+1.2*1.15) = 1.3018, score = 0.6931*1.3018 = 0.9023
        >>> [round(float(x), 4) for x in s.scores([data.term_index()["c"]])]
        [0.0, 0.9023]
    """

    def __init__(self, data: BM25Data | BM25Postings, params: BM25Spec, prune_min_docs: int = 50_000) -> None:
        self.params = params
        self.prune_min_docs = prune_min_docs
        self.n_docs = data.n_docs
        self.term_ids = data.term_index()
        N = data.n_docs
        dl = data.doc_lengths.astype(np.float64)  # (N,)
        avgdl = float(dl.mean()) if N else 1.0
        self.avgdl = avgdl
        if isinstance(data, BM25Postings):
            indptr, indices, counts = data.indptr, data.indices, data.tf  # (V+1,), (nnz,), (nnz,)
        else:
            tf = data.tf.tocsr()  # (V, N)
            tf.sort_indices()  # rows ascending within each term: pruned search looks rows up by bisection
            indptr, indices, counts = tf.indptr, tf.indices, tf.data
        df = np.diff(indptr)  # (V,) passages containing each term
        w_idf = idf(params.variant, N, df, params.epsilon)  # (V,)
        term_of_entry = np.repeat(np.arange(df.shape[0]), df)  # (nnz,)
        weights = w_idf[term_of_entry] * tfc(params.variant, counts, dl[indices], avgdl, params.k1, params.b, params.delta)
        # Score of a term in passages where it does not occur (non-zero for bm25l and bm25+ only).
        zero = tfc(params.variant, np.zeros(1), np.ones(1), 1.0, params.k1, 1.0, params.delta)[0]
        self.absent = w_idf * zero  # (V,)
        self.indptr = indptr.astype(np.int64)
        self.indices = indices.astype(np.int32 if N < 2**31 else np.int64)  # (nnz,) rows; int32 halves the memory
        self.weights = (weights - self.absent[term_of_entry]) if zero else weights  # (nnz,)
        self.upper, self.lower = term_bounds(self.indptr, self.weights)  # (V,), (V,) for MaxScore pruning
        self._nonnegative = bool(self.lower.min(initial=0.0) >= 0)  # no query can have a negative weight
        self._absent_any = bool(self.absent.any())  # bm25l/bm25+: a per-term constant joins every score
        self._pruning: tuple | None = None  # compiled path: block maxima and k-th weights, on first use
        self._pruning_lock = threading.Lock()  # service threads may send the first pruned queries together

    def lookup(self, terms: list[str]) -> np.ndarray:
        """Term ids of the analyzed query terms that are in the vocabulary (repeats kept)."""
        ids = self.term_ids
        return np.fromiter((ids[t] for t in terms if t in ids), dtype=np.int64)

    def scores(self, term_ids: np.ndarray) -> np.ndarray:
        """(N,) score of every passage for the query terms ``term_ids`` (repeats count again).

        The hybrid retriever's hot path (BM25 scores of the fused candidates, including those only
        the dense side found) and the reference that :meth:`top_k` is tested against.
        """
        out = np.zeros(self.n_docs)
        rows, weights = self._gather(np.asarray(term_ids, dtype=np.int64))
        np.add.at(out, rows, weights)
        return out + self.absent[term_ids].sum()

    def _gather(self, term_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        starts, ends = self.indptr[term_ids], self.indptr[term_ids + 1]
        if term_ids.size == 0:
            return np.zeros(0, np.int64), np.zeros(0)
        if term_ids.size == 1:
            return self.indices[starts[0] : ends[0]], self.weights[starts[0] : ends[0]]
        rows = np.concatenate([self.indices[s:e] for s, e in zip(starts, ends)])
        weights = np.concatenate([self.weights[s:e] for s, e in zip(starts, ends)])
        return rows, weights

    def top_k(self, term_ids: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Rows and scores of the ``k`` best passages that contain at least one query term.

        On corpora of at least ``prune_min_docs`` passages, exact MaxScore dynamic pruning:
        compiled, block-max over row windows, where numba is installed (:mod:`rag.bm25_kernels`,
        chosen by :mod:`rag.compat.numba`), else numpy (:mod:`rag.bm25_pruning`). Compiled: the
        same passages, order and scores as :meth:`top_k_exhaustive`, bit for bit. Numpy: scores
        summed in another order (largest bound first), so equal to the full scan's only up to
        rounding (within ``(m + 2)·2**-52`` relative for ``m`` query terms), and passages whose
        scores agree to the last bits may swap; ties at the k-th score go to the lowest rows;
        queries with a negative term weight are scanned exhaustively. With ``allowed`` (N,) bool (a metadata filter's mask)
        only those rows compete, before the top ``k`` is cut.
        """
        if term_ids.size == 0 or k < 1:
            return np.zeros(0, np.int64), np.zeros(0)
        if self.n_docs < self.prune_min_docs:
            return self.top_k_exhaustive(term_ids, k, allowed)
        term_ids = np.ascontiguousarray(term_ids, dtype=np.int64)
        kernels = numba_compat.bm25_kernels()
        if kernels is not None:
            rows, scores = self._top_k_compiled(kernels, term_ids, k, allowed)
            return rows, (scores + self.absent[term_ids].sum()) if self._absent_any else scores
        found = None if allowed is not None else maxscore_top_k(
            self.indptr, self.indices, self.weights, self.upper, self.lower, self.n_docs, term_ids, k)
        if found is None:
            return self.top_k_exhaustive(term_ids, k, allowed)
        rows, scores = found
        return rows, scores + self.absent[term_ids].sum()

    def _top_k_compiled(self, kernels, term_ids: np.ndarray, k: int, allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        # the kernels do not check bounds: refuse what numpy indexing would refuse
        if term_ids.min() < 0 or term_ids.max() >= self.upper.size:
            raise IndexError(f"term ids must lie in [0, {self.upper.size}), got {term_ids.min()}..{term_ids.max()}")
        if allowed is not None and np.shape(allowed) != (self.n_docs,):
            raise ValueError(f"allowed must be a ({self.n_docs},) mask, got shape {np.shape(allowed)}")
        mask = _EVERY_ROW if allowed is None else np.ascontiguousarray(allowed, dtype=bool)
        if not self._nonnegative and self.lower[term_ids].min() < 0:
            return kernels.exhaustive_top_k(self.indptr, self.indices, self.weights, self.n_docs, term_ids, k, mask)
        blocks, subs, seeds = self.prepare_pruning()
        # the k-th largest weight of a query term starts θ, unless a mask may hide those passages
        seed = seeds if allowed is None and k <= _SEED_K else _NO_SEED
        return kernels.maxscore_top_k(self.indices, self.weights, *blocks, *subs, self.upper, seed, term_ids, k, mask)

    def prepare_pruning(self) -> tuple | None:
        """Build the compiled path's pruning arrays once (thread-safe) and return them; ``None`` without numba.

        Window blocks, the common terms' sub-block tables and each term's 10th-largest weight
        (:mod:`rag.bm25_blocks`): three passes over the postings, done by the first pruned query
        unless called before (timed in docs/benchmarks.md). Concurrent first queries wait for one
        build instead of each building its own.
        """
        kernels = numba_compat.bm25_kernels()
        if kernels is None:
            return None
        if self._pruning is None:
            with self._pruning_lock:
                if self._pruning is None:
                    min_df = max(1, self.n_docs // _DENSE_ROWS) if self.n_docs >= _DENSE_MIN_DOCS else 1 << 62
                    self._pruning = (kernels.window_blocks(self.indptr, self.indices, self.weights),
                                     kernels.sub_blocks(self.indptr, self.indices, self.weights, self.upper, self.n_docs, min_df),
                                     kernels.kth_largest(self.indptr, self.weights, _SEED_K))
        return self._pruning

    def top_k_exhaustive(self, term_ids: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`top_k` by scoring every posting of every query term (the reference path).

        Scores accumulate in a dense (N,) array (``bincount``: O(postings + N), no sort), the
        top ``k`` are selected in linear time, and ties at the k-th score go to the lowest
        rows, so results are deterministic and equal to a full sort by (-score, row). Rows
        where ``allowed`` (N,) is ``False`` are never results.
        """
        if term_ids.size == 0:
            return np.zeros(0, np.int64), np.zeros(0)
        rows, weights = self._gather(term_ids)
        acc = np.bincount(rows, weights=weights, minlength=self.n_docs)  # (N,)
        absent = np.ones(self.n_docs, dtype=bool)
        absent[rows] = False
        if allowed is not None:
            absent |= ~allowed
        acc[absent] = -np.inf  # passages without any query term are never results
        n_match = self.n_docs - int(np.count_nonzero(absent))
        k = min(k, n_match)
        if k == 0:
            return np.zeros(0, np.int64), np.zeros(0)
        if k < self.n_docs:
            kth = acc[np.argpartition(-acc, k - 1)[k - 1]]  # the k-th largest score
            above = np.flatnonzero(acc > kth)
            ties = np.flatnonzero(acc == kth)[: k - above.size]  # lowest rows first
            top = np.concatenate([above, ties])
        else:
            top = np.arange(self.n_docs)
        order = np.lexsort((top, -acc[top]))
        top = top[order]
        return top, acc[top] + self.absent[term_ids].sum()
