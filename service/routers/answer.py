"""``POST /answer``: retrieve, then answer with numbered citations through :func:`rag.pipeline.answer_one`
(the function ``rag ask`` and ``rag eval qa`` answer with).

With a configured generator (``RAG_GENERATOR``) the answer is generated, one at a time per index
(a causal LM is not shared between threads) — by a Fusion-in-Decoder reader when the model is a
T5-family encoder-decoder (LUMEN memory with ``RAG_FID_LIVE_LAYERS``); without one it is *extractive* — sentences quoted
from the top passages, ranked by the index's bi-encoder and marked as such by ``kind``
(``no_answer`` when no sentence is close enough to the question). An index
without a dense part has no encoder to rank sentences with, so without a generator the request
gets a 503 body that says so: never a crash, never a made-up answer.
"""

# No `from __future__ import annotations`: see routers/search.py.

from fastapi import APIRouter, Request

from service.dependencies import State, run_blocking, tag
from service.errors import error_responses
from service.schemas import AnswerResponse, RequestModels
from service.state import AnswerUnavailableError, LoadedIndex
from service.streaming import SSE_RESPONSE, answer_stream


def _config(body, max_new_tokens: int, expr=None):
    """The :class:`rag.pipeline.AskConfig` of a request (``expr``: its parsed metadata filter)."""
    from rag.generation.sampling import SamplingConfig
    from rag.pipeline import AskConfig

    return AskConfig(k=body.k, mode=body.mode, rerank=body.rerank is not False, rerank_depth=body.rerank_depth,
                     sampling=SamplingConfig(max_new_tokens=max_new_tokens), filter=expr)


def _answer(entry: LoadedIndex, question: str, config, generator) -> dict:
    from rag.pipeline import answer_one

    if entry.reader is None and generator is None:  # extractive: no model state shared between threads
        return answer_one(question, entry.index, None, config).answer.to_dict()
    with entry.lock:  # Fusion-in-Decoder (with LUMEN memory when configured) or causal LM
        return answer_one(question, entry.index, generator, config, reader=entry.reader).answer.to_dict()


def build_router(models: RequestModels) -> APIRouter:
    """The answer route, with request body ``models.answer``."""
    router = APIRouter(tags=["answer"])
    AnswerRequest = models.answer

    @router.post("/answer", response_model=AnswerResponse, summary="Answer a question with cited passages",
                 responses={200: SSE_RESPONSE, **error_responses(400, 401, 404, 413, 422, 503)})
    async def answer(body: AnswerRequest, request: Request, state: State):
        """Retrieve ``k`` passages and answer from them, citing them as [1] … [k]. With ``stream``, the
        answer arrives as Server-Sent Events while it is generated (``service/streaming.py``)."""
        entry = state.get(body.index)
        tag(request, mode=body.mode, index=entry.name)
        entry.retriever(body.mode, body.rerank)  # 422 for a mode the index lacks (also rerank without a reranker), before any work
        if state.generator is None and entry.reader is None and entry.manifest.dense is None:
            raise AnswerUnavailableError(
                f"index {entry.name!r} has no dense encoder to rank quoted sentences with and no generator is "
                "configured: start the service with RAG_GENERATOR=<model> (rag serve --generator) or use a "
                "dense index")
        expr = None
        if body.filter is not None:  # a bad filter is a 422 naming the field, before any work (or stream)
            from indexes.filters import parse_filter

            expr = parse_filter(body.filter)
            await run_blocking(request, entry.index.where, expr)
        config = _config(body, state.settings.answer_max_new_tokens, expr)
        if body.stream:
            return answer_stream(request, entry, body.question, config, state.generator)
        out = await run_blocking(request, _answer, entry, body.question, config, state.generator)
        return {**out, "index": entry.name}

    return router
