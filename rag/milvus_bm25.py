"""BM25 on Milvus with *our* exact weights: the passage side as sparse vectors, the query as term counts.

Why our weights and not Milvus' BM25 function: a BM25 score depends on the analyzer (ours is
recorded in the manifest and applied to queries) and on the collection statistics ``N``, ``df``,
``avgdl``. The engine's function tokenizes with its own analyzers and keeps its own statistics;
on Milvus Lite 3.2 its scores also disagree with the formula for ``tf > 1`` and change with a
filter (docs/scale-out.md). Storing ``w(t, d) = idf(t) · tfc(tf, dl)`` per passage makes the
inner product with the query's term counts exactly our score (float32), so ``--backend milvus``
and the local index rank alike and hybrid fusion sees the same numbers.

The price: ``N``, ``df`` and ``avgdl`` change with every ``rag add`` / ``rag delete``, and
``avgdl`` sits inside every passage's weight, so each commit rewrites the weights of all live
passages (an upsert of ``N`` rows stamped with the commit: seconds for 10^4 passages, minutes for
10^6). Batch changes on large indexes, or rebuild. Variants whose absent terms score non-zero
(``bm25l``, ``bm25+``) or whose idf can be negative (``robertson``, ``okapi``) are refused:
Milvus stores non-negative weights of present terms only.

References:
    Robertson & Zaragoza. "The Probabilistic Relevance Framework: BM25 and Beyond." 2009.
    Formal, Piwowarski, Clinchant. "SPLADE." SIGIR 2021 — learned weights in the same form,
    a sparse inner product over an inverted index.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from indexes.errors import InputError
from indexes.filters import RowFilter
from indexes.manifest import BM25Spec
from indexes.milvus_search import MilvusBM25Store
from indexes.passage_store import PassageStore
from rag.analyzer import Analyzer
from rag.bm25 import BM25Scorer
from rag.protocols import Ranking, RowScorer
from rag.retrievers import _Base

#: Variants whose weights the engine can hold (present terms only, never negative).
ENGINE_VARIANTS = ("lucene", "atire")


def check_variant(params: BM25Spec) -> None:
    """Raise unless ``params.variant`` can be stored in Milvus (see the module docstring)."""
    if params.variant not in ENGINE_VARIANTS:
        raise InputError(f"--bm25-variant {params.variant} cannot be stored in Milvus (it needs weights for absent terms "
                         f"or negative ones); use {' or '.join(ENGINE_VARIANTS)}")


def passage_weights(data, params: BM25Spec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each passage's BM25 weight of each of its terms, passage-major CSR over the data's rows.

    Args:
        data: term counts (:class:`indexes.bm25_store.BM25Data` or ``BM25Postings``), (V, G).

    Returns:
        ``(indptr (G+1,), term ids (nnz,), weights (nnz,))``; term ids index ``data.vocab``.
    """
    import scipy.sparse as sp

    check_variant(params)
    s = BM25Scorer(data, params, prune_min_docs=1 << 62)
    by_term = sp.csr_matrix((s.weights, s.indices, s.indptr), shape=(len(s.term_ids), s.n_docs))  # (V, G)
    by_passage = by_term.T.tocsr()  # (G, V)
    by_passage.sort_indices()
    return by_passage.indptr.astype(np.int64), by_passage.indices.astype(np.int64), by_passage.data.astype(np.float64)


def sync_bm25(view, params: BM25Spec, epoch: int) -> None:
    """Write the live passages' weights of the commit ``view`` (a :class:`indexes.segmented.CommitView`)
    into the engine, stamped ``epoch``; rows of other epochs go."""
    indptr, terms, weights = passage_weights(view.bm25(), params)
    metadata = [p.metadata for p in view.store.iter_all()]  # global row order, as the counts
    view.engine().write_bm25(view.engine_rows().pks(), indptr, terms, weights, epoch, metadata)


class MilvusBM25Retriever(_Base):
    """A :class:`rag.protocols.ScoringRetriever`: our analyzer and term ids, the engine's sparse search.

    Args:
        engine: the commit's BM25 rows in Milvus.
        term_ids: the commit's vocabulary (term → id, as the weights were written).
        analyzer: the index's analyzer.
        store: the commit's passages.
    """

    def __init__(self, engine: MilvusBM25Store, term_ids: dict[str, int], analyzer: Analyzer, store: PassageStore) -> None:
        self.engine, self.term_ids, self.analyzer, self.store = engine, term_ids, analyzer, store

    def query_vector(self, query: str) -> dict[int, float]:
        """The query's in-vocabulary term counts (a repeated term counts again, as in the local scorer)."""
        out: dict[int, float] = {}
        for t in self.analyzer(query):
            i = self.term_ids.get(t)
            if i is not None:
                out[i] = out.get(i, 0.0) + 1.0
        return out

    def rank_batch(self, queries: Sequence[str], depth: int, where: RowFilter | None = None) -> list[Ranking]:
        return [self.engine.top_k(self.query_vector(q), depth, where) for q in queries]

    def rank_scoring(self, queries: Sequence[str], depth: int,
                     where: RowFilter | None = None) -> list[tuple[Ranking, RowScorer]]:
        out = []
        for q in queries:
            v = self.query_vector(q)
            out.append((self.engine.top_k(v, depth, where), lambda rows, v=v: self.engine.scores(v, rows)))
        return out
