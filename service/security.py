"""Who may call the API and how much they may send.

- **API key** (optional, ``RAG_API_KEY``): ``Authorization: Bearer <key>``, compared with
  :func:`hmac.compare_digest` so the time taken does not reveal how much of a guess matched;
  401 with ``WWW-Authenticate: Bearer`` otherwise. ``/healthz``, ``/readyz`` and the OpenAPI
  document stay open for probes and clients.
- **Body size and pace**: :class:`BodyLimitMiddleware` refuses a declared ``Content-Length`` above
  the limit before reading anything, stops a chunked body as soon as it passes the limit (413),
  and a body that stalls for ``body_timeout_s`` (408).
- **Connections, request-head size and time**: :mod:`service.connections` (below the ASGI app).
- **Query length, k, batch size**: part of the request schemas (:mod:`service.schemas`).
- **Index selection by name only**: :meth:`service.state.ServiceState.get` looks names up in
  the configured mapping; no request field is ever joined to a filesystem path.
"""

from __future__ import annotations

import asyncio
import hmac

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import error_response


def api_key_dependency(api_key: str):
    """A FastAPI dependency that admits only ``Authorization: Bearer <api_key>``."""
    expected = api_key.encode()
    bearer = HTTPBearer(auto_error=False, description="The service's RAG_API_KEY.")

    async def require_api_key(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
        given = credentials.credentials.encode() if credentials is not None else b""
        if not hmac.compare_digest(given, expected):
            raise HTTPException(401, "missing or wrong API key: send 'Authorization: Bearer <key>'",
                                headers={"WWW-Authenticate": "Bearer"})

    return require_api_key


class _TooLarge(HTTPException):
    """Raised from ``receive``; an HTTPException so FastAPI's body reader passes it on to the handlers."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"request body over {max_bytes} bytes; send fewer or shorter queries (max_body_bytes)",
                         headers={"Connection": "close"})


class _TooSlow(HTTPException):
    """Raised from ``receive`` when the client pauses too long in the middle of a body."""

    def __init__(self, timeout_s: float) -> None:
        super().__init__(408, f"the request body paused for over {timeout_s:g} s (body_timeout_s); send it at once",
                         headers={"Connection": "close"})


class BodyLimitMiddleware:
    """Pure ASGI middleware: 413 for request bodies over ``max_bytes``, 408 for stalled bodies.

    Args:
        app: the wrapped application.
        max_bytes: largest body accepted.
        timeout_s: longest wait for the next piece of an unfinished body (``None``: no limit);
            once the body is complete, waiting for a disconnect is not limited.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, timeout_s: float | None = None) -> None:
        self.app, self.max_bytes, self.timeout_s = app, max_bytes, timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            return await self._refuse(scope, receive, send)
        seen = 0
        started = False
        body_done = False

        async def limited_receive() -> Message:
            nonlocal seen, body_done
            if body_done or self.timeout_s is None:
                message = await receive()
            else:
                try:
                    message = await asyncio.wait_for(receive(), self.timeout_s)
                except asyncio.TimeoutError:
                    raise _TooSlow(self.timeout_s) from None
            if message["type"] == "http.request":
                body_done = not message.get("more_body", False)
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except (_TooLarge, _TooSlow) as exc:
            if not started:
                await self._refuse(scope, receive, send, exc)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, exc: HTTPException | None = None) -> None:
        exc = exc or _TooLarge(self.max_bytes)
        code = "payload_too_large" if exc.status_code == 413 else "request_timeout"
        # Connection: close, since the unread rest of the body must not be parsed as a request.
        response = error_response(exc.status_code, code, exc.detail, headers=exc.headers)
        await response(scope, receive, send)

