"""Batch search: a set of queries → a TREC-style run of document ids and scores."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from tqdm.auto import tqdm

from indexes.filters import RowFilter
from rag.index import Index
from rag.queries import Run
from rag.retrievers import check_query
from rag.types import SearchMode


def search_run(index: Index, queries: Mapping[str, str], mode: SearchMode, k: int = 100, per_doc: bool = True,
               batch_size: int = 64, progress: bool = False, where: RowFilter | None = None, **hybrid_overrides) -> Run:
    """Search every query and keep the top ``k`` documents (best passage per document) or passages.

    Args:
        index: the index to search.
        queries: ``{query id: text}``.
        mode: ``bm25``, ``dense`` or ``hybrid``.
        k: results per query.
        per_doc: rank documents by their best passage (for document-level qrels such as BEIR's).
        batch_size: queries encoded together (dense and hybrid).
        where: a metadata filter (:meth:`rag.index.Index.where`): only passages it selects are ranked.
    """
    retriever = index.retriever(mode, **hybrid_overrides)
    ids = index.store.doc_ids() if per_doc else index.store.ids()
    depth = index.per_document_depth(k) if per_doc else k
    limit = len(index.store) if where is None else where.count
    items = [(qid, check_query(text)) for qid, text in queries.items()]
    run: Run = {}
    bar = tqdm(total=len(items), desc=f"search ({mode})", unit="q", disable=not progress)
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        for (qid, text), ranking in zip(chunk, retriever.rank_batch([t for _, t in chunk], depth, where)):
            docs = _top_documents(ranking, ids, k)
            d = depth
            # A document split into many windows can fill the depth: deepen until k documents,
            # or nothing more matches, or every passage was ranked (as rag.retrievers.search_documents).
            while per_doc and len(docs) < k and ranking[0].size == d and d < limit:
                d = min(limit, 2 * d)
                ranking = retriever.rank_batch([text], d, where)[0]
                docs = _top_documents(ranking, ids, k)
            run[qid] = docs
        bar.update(len(chunk))
    bar.close()
    return run


def _top_documents(ranking: tuple, ids: Sequence[str], k: int) -> dict[str, float]:
    """The first ``k`` distinct ids of a ranking's rows, each at its best (first) score, best first."""
    rows, scores = ranking
    docs: dict[str, float] = {}
    for r, s in zip(rows.tolist(), scores.tolist()):
        docs.setdefault(ids[r], s)
        if len(docs) == k:
            break
    return docs
