"""Typed FastAPI dependencies: the loaded :class:`~service.state.ServiceState` and a way to run
blocking work (BM25 scoring, waiting for the encoder, generation) off the event loop.

Blocking calls go to a pool of worker threads bounded by an :class:`anyio.CapacityLimiter`
of ``Settings.threads`` tokens. The pool must be at least as large as the number of requests
one wants batched together: a dense query waits in its thread for the micro-batch it joined.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

import anyio.to_thread
from fastapi import Depends, Request

from service.state import ServiceState

T = TypeVar("T")


async def _state(request: Request) -> ServiceState:
    # async: FastAPI runs a plain `def` dependency in a worker thread, a thread hop per request.
    return request.app.state.service


State = Annotated[ServiceState, Depends(_state)]


async def run_blocking(request: Request, fn: Callable[..., T], *args) -> T:
    """``fn(*args)`` in a worker thread; the event loop keeps serving meanwhile."""
    return await anyio.to_thread.run_sync(fn, *args, limiter=request.app.state.limiter)


def tag(request: Request, *, mode: str | None = None, index: str | None = None) -> None:
    """Record ``mode`` and ``index`` for the request log and the metrics labels."""
    if mode is not None:
        request.state.mode = mode
    if index is not None:
        request.state.index = index
