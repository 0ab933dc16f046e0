"""``POST /answer``: retrieve, then answer with numbered citations through :func:`rag.pipeline.answer_one`
(the function ``rag ask`` and ``rag eval qa`` answer with).

With a configured generator (``RAG_GENERATOR``) the answer is generated, one at a time per index
(a causal LM is not shared between threads) — by a Fusion-in-Decoder reader when the model is a
T5-family encoder-decoder (LUMEN memory with ``RAG_FID_LIVE_LAYERS``); without one it is *extractive* — sentences quoted
from the top passages, ranked by the index's bi-encoder and marked as such by ``kind``
(``no_answer`` when no sentence is close enough to the question). An index
without a dense part has no encoder to rank sentences with, so without a generator the request
gets a 503 body that says so: never a crash, never a made-up answer.

With a causal LM the request may choose ``rag ask``'s generation path: ``kv_cache`` (the passage
states of ``rag cache build``), ``fusion`` (RAG-Sequence / RAG-Token), ``select_blocks`` and
``evict``, and its decoding: ``temperature``, ``top_p``, ``top_k``, ``seed``; the same
combinations are refused, with the CLI's message naming the JSON fields. On a FiD or extractive
server they are a 422. ``max_new_tokens`` bounds any generator's answer (causal LM or FiD), at
most the server's ``answer_max_new_tokens`` (a 422 naming the field beyond it). Streamed answers
take the same path.
"""

# No `from __future__ import annotations`: see routers/search.py.

from fastapi import APIRouter, Request

from service.dependencies import State, run_blocking, tag
from service.errors import error_responses
from service.schemas import AnswerResponse, RequestModels
from service.state import AnswerUnavailableError, LoadedIndex
from service.streaming import SSE_RESPONSE, answer_stream


#: How refusals name the generation-path options: by the request's JSON fields, never by CLI flags.
_FIELDS = dict(kv_cache="kv_cache", fusion="fusion", select="select_blocks", evict="evict")
#: Decoding fields a causal LM honours (a FiD reader decodes greedily or by beam search: 422 there).
_DECODING = ("temperature", "top_p", "top_k", "seed")


def _path(body, decoder: bool, fid: bool):
    """The :class:`rag.generation.paths.PathConfig` of a request (``rag ask``'s options, as JSON fields).

    Raises:
        InputError: (422) an option without a decoder-only generator on this server, or options
            that do not combine (the CLI's message, naming the JSON fields).
    """
    from service.errors import field_error
    from rag.generation.block_select import BlockSelectConfig
    from rag.generation.kv_evict import EvictionConfig
    from rag.generation.paths import OptionNames, PathConfig, conflict
    from rag.generation.rag_fusion import FusionConfig

    fusion = FusionConfig() if body.fusion is None else FusionConfig(body.fusion.method, body.fusion.temperature,
                                                                   body.fusion.decoding)
    select = None if body.select_blocks is None else BlockSelectConfig(body.select_blocks)
    eviction = None if body.evict is None else EvictionConfig(body.evict.method, body.evict.budget)
    used = [name for name, on in (("kv_cache", body.kv_cache), ("fusion", fusion.fusion != "concat"),
                                  ("select_blocks", select is not None), ("evict", eviction is not None),
                                  *((knob, getattr(body, knob) is not None) for knob in _DECODING)) if on]
    has = "a Fusion-in-Decoder reader" if fid else "no generator (its answers are extractive)"
    if used and not decoder:
        raise field_error(used, f"{', '.join(used)} {'needs' if len(used) == 1 else 'need'} a decoder-only generator "
                                f"(a causal LM): this service has {has}; a service started with RAG_GENERATOR=<causal "
                                "LM> serves them")
    if body.max_new_tokens is not None and not (decoder or fid):
        raise field_error(["max_new_tokens"], f"max_new_tokens needs a generator: this service has {has}; a service "
                                              "started with RAG_GENERATOR=<model> serves it")
    message = conflict(body.kv_cache, fusion, select, eviction, OptionNames(**_FIELDS))
    if message is not None:
        raise field_error([f for f in _FIELDS.values() if f in message] or ["body"], message)
    return PathConfig(body.kv_cache, fusion=fusion, select=select, eviction=eviction)


def _config(body, max_new_tokens: int, expr=None, path=None):
    """The :class:`rag.pipeline.AskConfig` of a request (``max_new_tokens``: the server's cap, the default;
    ``expr``: its parsed metadata filter; ``path``: its :func:`_path`)."""
    from rag.generation.paths import PathConfig
    from rag.generation.sampling import SamplingConfig
    from rag.pipeline import AskConfig

    path = path or PathConfig()
    decoding = {knob: getattr(body, knob) for knob in _DECODING if getattr(body, knob) is not None}
    sampling = SamplingConfig(max_new_tokens=body.max_new_tokens or max_new_tokens, **decoding)
    return AskConfig(k=body.k, mode=body.mode, rerank=body.rerank is not False, rerank_depth=body.rerank_depth,
                     rerank_weight=body.rerank_weight,
                     kv_cache=path.kv_cache, layout=path.layout, fusion=path.fusion, select=path.select,
                     eviction=path.eviction, sampling=sampling, filter=expr)


def _answer(entry: LoadedIndex, question: str, config, generator, states=None) -> dict:
    from rag.pipeline import answer_one

    if entry.reader is None and generator is None:  # extractive: no model state shared between threads
        return answer_one(question, entry.index, None, config).answer.to_dict()
    with entry.lock:  # Fusion-in-Decoder (with LUMEN memory when configured) or causal LM
        return answer_one(question, entry.index, generator, config, reader=entry.reader, states=states).answer.to_dict()


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
        # 422 for a mode the index lacks, or rerank fields a reranker-less service (or "rerank": false) ignores, before any work
        entry.retriever(body.mode, body.rerank, body.rerank_depth, body.rerank_weight)
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
        decoder = state.generator is not None and entry.reader is None
        path = _path(body, decoder, entry.reader is not None)  # 422 before any work (or stream)
        config = _config(body, state.settings.answer_max_new_tokens, expr, path)
        # the commit's KV states, opened by its first kv_cache request (a 422 naming `rag cache build` without them)
        states = await run_blocking(request, entry.passage_states, state.generator, config.cache) if config.kv_cache else None
        if body.stream:
            return answer_stream(request, entry, body.question, config, state.generator, states)
        out = await run_blocking(request, _answer, entry, body.question, config, state.generator, states)
        return {**out, "index": entry.name}

    return router
