"""``POST /search`` and ``POST /search/batch``: ranked passages from a configured index.

The hits are exactly those of ``rag search --json`` for the same index, query, mode and ``k``:
both call ``Index.retriever(mode).search`` (``tests/service/test_search.py::test_http_hits_equal_rag_search_json``).
"""

# No `from __future__ import annotations`: FastAPI must see the request models built in
# build_router as real classes, not as names to look up in this module.
import time

from fastapi import APIRouter, Request

from service.dependencies import State, run_blocking, tag
from service.errors import error_responses
from service.schemas import BatchResponse, RequestModels, SearchResponse


def _highlighted(entry, query: str, hits: list[dict]) -> list[dict]:
    """``hits`` with ``highlights``: the query's terms as the index's analyzer matches them (the
    default English analyzer for an index without a BM25 part)."""
    from rag.highlight import match_spans

    bm25 = entry.retrievers.get("bm25")
    if bm25 is not None:
        analyzer = bm25.analyzer
    else:
        from indexes.manifest import AnalyzerSpec
        from rag.analyzer import Analyzer

        analyzer = Analyzer(AnalyzerSpec())
    return [{**h, "highlights": {"title": match_spans(analyzer, query, h["title"]),
                                 "text": match_spans(analyzer, query, h["text"])}} for h in hits]


def _hits(hits) -> list[dict]:
    # Plain dicts (not dataclasses.asdict, which deep-copies): the response model validates them.
    return [{"id": h.id, "doc_id": h.doc_id, "score": h.score, "title": h.title, "text": h.text,
             "metadata": h.metadata} for h in hits]


def _search(entry, retriever, queries: list[str], k: int, spec: dict | None):
    """Hits of each query; ``spec`` (a metadata filter) is resolved against the entry's commit first."""
    if spec is None:
        return retriever.search_batch(queries, k)
    return retriever.search_batch(queries, k, entry.index.where(spec))


def build_router(models: RequestModels) -> APIRouter:
    """The search routes, with request bodies ``models.search`` and ``models.batch``."""
    router = APIRouter(tags=["search"])
    SearchRequest, BatchSearchRequest = models.search, models.batch

    # exclude_unset: `highlights` appears only when asked for, so plain hits stay those of `rag search --json`
    @router.post("/search", response_model=SearchResponse, responses=error_responses(400, 401, 404, 413, 422, 503),
                 summary="Search one index with BM25, dense or hybrid retrieval", response_model_exclude_unset=True)
    async def search(body: SearchRequest, request: Request, state: State) -> dict:
        """Top-``k`` passages for ``query``. Dense and hybrid queries arriving together share one
        encoder call (micro-batching); the scoring runs in a worker thread. With ``highlight``, each
        hit also carries the spans of the query's terms (see :mod:`rag.highlight`)."""
        entry = state.get(body.index)
        tag(request, mode=body.mode, index=entry.name)
        retriever = entry.retriever(body.mode, body.rerank, body.rerank_depth, body.rerank_weight)
        t0 = time.perf_counter()
        hits = await run_blocking(request, _search, entry, retriever, [body.query], body.k, body.filter)
        hits = hits[0]
        ms = 1e3 * (time.perf_counter() - t0)
        out = _hits(hits)
        if body.highlight:
            out = await run_blocking(request, _highlighted, entry, body.query, out)
        return {"hits": out, "index": entry.name, "mode": body.mode, "timing_ms": ms}

    @router.post("/search/batch", response_model=BatchResponse, responses=error_responses(400, 401, 404, 413, 422, 503),
                 summary="Search many queries in one call", response_model_exclude_unset=True)
    async def search_batch(body: BatchSearchRequest, request: Request, state: State) -> dict:
        """One result list per query, in order; the queries are encoded as one batch."""
        entry = state.get(body.index)
        tag(request, mode=body.mode, index=entry.name)
        retriever = entry.retriever(body.mode, body.rerank, body.rerank_depth, body.rerank_weight)
        t0 = time.perf_counter()
        runs = await run_blocking(request, _search, entry, retriever, body.queries, body.k, body.filter)
        ms = 1e3 * (time.perf_counter() - t0)
        return {"results": [{"hits": _hits(h)} for h in runs], "index": entry.name, "mode": body.mode, "timing_ms": ms}

    return router
