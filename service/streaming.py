"""``POST /answer`` with ``"stream": true``: the answer as Server-Sent Events.

Events, each with one line of JSON as ``data``:

- ``token`` — ``{"text": piece}``, as the generator decodes (one event for an extractive or a
  Fusion-in-Decoder answer, which arrive whole);
- ``answer`` — last: the same object as the non-streamed ``/answer`` response (question, answer,
  kind, citations, timings, token counts, index);
- ``error`` — instead of ``answer`` when the pipeline fails after the stream began:
  ``{"error": {"code", "message"}}``, the body every other error has.

Errors found before any work (unknown index, unsupported mode, no way to answer) are ordinary
JSON error responses, as without ``stream``.

One worker thread (from the service's pool; under the index's lock when a model is used) pulls
pieces from :func:`rag.streaming.answer_events` and hands them to the event loop. When the
client disconnects, Starlette cancels the response; the worker sees the flag at the next piece
and closes the iterator, which stops decoding (``rag_streamed_answer_pieces_total`` stops
growing). The response waits for the worker, so the index's lock is always released.

Reference: WHATWG HTML, "Server-sent events" (the ``text/event-stream`` format).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import nullcontext
from typing import TYPE_CHECKING

import anyio
import anyio.to_thread
from fastapi import Request
from fastapi.responses import StreamingResponse

from indexes.errors import RagError
from service.errors import rag_error_body
from service.state import LoadedIndex

if TYPE_CHECKING:
    from rag.pipeline import AskConfig

log = logging.getLogger("rag.service")

#: OpenAPI description of the streamed 200 response.
SSE_RESPONSE = {"content": {"text/event-stream": {"schema": {"type": "string"}, "example":
                'event: token\ndata: {"text": "Rayleigh"}\n\nevent: answer\ndata: {"question": "...", "answer": "...", ...}\n\n'}},
                "description": "The answer; with `stream: true`, Server-Sent Events: `token` events, then one `answer` "
                "(or `error`) event."}


def sse(event: str, data: dict) -> bytes:
    """One Server-Sent Event: ``event: NAME`` and one ``data:`` line of JSON (never multi-line)."""
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


def answer_stream(request: Request, entry: LoadedIndex, question: str, config: AskConfig, generator,
                  states=None) -> StreamingResponse:
    """A ``text/event-stream`` response answering ``question`` from ``entry``.

    Args:
        request: the HTTP request (for the thread limiter and the metrics).
        entry: the loaded index.
        question: the question text.
        config: a :class:`rag.pipeline.AskConfig`.
        generator: the service's causal LM, or ``None`` (FiD reader or extractive).
        states: the index's opened passage KV states when ``config.kv_cache``.
    """
    from rag.streaming import answer_events

    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes | None] = asyncio.Queue()  # unbounded: at most max_new_tokens pieces
    cancelled = threading.Event()
    pieces = request.app.state.metrics.answer_pieces
    uses_model = entry.reader is not None or generator is not None

    def put(chunk: bytes | None) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, chunk)

    def produce() -> None:
        try:
            with entry.lock if uses_model else nullcontext():  # a model serves one answer at a time
                if cancelled.is_set():  # the client left while this request waited for the lock
                    return
                events = answer_events(question, entry.index, config, generator=generator, reader=entry.reader,
                                       states=states)
                try:
                    for item in events:
                        if isinstance(item, str):
                            pieces.inc()
                            if cancelled.is_set():
                                return  # closing `events` (below) stops the decoding loop
                            put(sse("token", {"text": item}))
                        else:
                            put(sse("answer", {**item.to_dict(), "index": entry.name}))
                finally:
                    events.close()
        except RagError as exc:
            put(sse("error", rag_error_body(exc, request)))
        except Exception:  # a bug: the client gets the request id, the log gets the traceback
            rid = request.scope.get("state", {}).get("request_id", "?")
            log.exception("streamed answer failed in request %s", rid)
            put(sse("error", {"error": {"code": "internal_error",
                                        "message": f"internal error (request id {rid}); the log has the details"}}))
        finally:
            put(None)

    async def body() -> AsyncIterator[bytes]:
        worker = asyncio.ensure_future(anyio.to_thread.run_sync(produce, limiter=request.app.state.limiter))
        try:
            while (chunk := await queue.get()) is not None:
                yield chunk
        finally:
            cancelled.set()
            with anyio.CancelScope(shield=True):  # let the worker stop and release the lock
                await worker

    # no-cache: every answer is new; X-Accel-Buffering: a proxy (nginx) must pass events on at once
    return StreamingResponse(body(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
