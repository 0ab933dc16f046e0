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


def _hits(hits) -> list[dict]:
    # Plain dicts (not dataclasses.asdict, which deep-copies): the response model validates them.
    return [{"id": h.id, "doc_id": h.doc_id, "score": h.score, "title": h.title, "text": h.text,
             "metadata": h.metadata} for h in hits]


def build_router(models: RequestModels) -> APIRouter:
    """The search routes, with request bodies ``models.search`` and ``models.batch``."""
    router = APIRouter(tags=["search"])
    SearchRequest, BatchSearchRequest = models.search, models.batch

    @router.post("/search", response_model=SearchResponse, responses=error_responses(400, 401, 404, 413, 422, 503),
                 summary="Search one index with BM25, dense or hybrid retrieval")
    async def search(body: SearchRequest, request: Request, state: State) -> dict:
        """Top-``k`` passages for ``query``. Dense and hybrid queries arriving together share one
        encoder call (micro-batching); the scoring runs in a worker thread."""
        entry = state.get(body.index)
        tag(request, mode=body.mode, index=entry.name)
        retriever = entry.retriever(body.mode)
        t0 = time.perf_counter()
        hits = await run_blocking(request, retriever.search, body.query, body.k)
        ms = 1e3 * (time.perf_counter() - t0)
        return {"hits": _hits(hits), "index": entry.name, "mode": body.mode, "timing_ms": ms}

    @router.post("/search/batch", response_model=BatchResponse, responses=error_responses(400, 401, 404, 413, 422, 503),
                 summary="Search many queries in one call")
    async def search_batch(body: BatchSearchRequest, request: Request, state: State) -> dict:
        """One result list per query, in order; the queries are encoded as one batch."""
        entry = state.get(body.index)
        tag(request, mode=body.mode, index=entry.name)
        retriever = entry.retriever(body.mode)
        t0 = time.perf_counter()
        runs = await run_blocking(request, retriever.search_batch, body.queries, body.k)
        ms = 1e3 * (time.perf_counter() - t0)
        return {"results": [{"hits": _hits(h)} for h in runs], "index": entry.name, "mode": body.mode, "timing_ms": ms}

    return router
