"""Who may call the API and how much they may send.

- **API key** (optional, ``RAG_API_KEY``): ``Authorization: Bearer <key>``, compared with
  :func:`hmac.compare_digest` so the time taken does not reveal how much of a guess matched;
  401 with ``WWW-Authenticate: Bearer`` otherwise. ``/healthz``, ``/readyz`` and the OpenAPI
  document stay open for probes and clients.
- **Body size**: :class:`BodyLimitMiddleware` refuses a declared ``Content-Length`` above the
  limit before reading anything, and stops a chunked body as soon as it passes the limit (413).
- **Query length, k, batch size**: part of the request schemas (:mod:`service.schemas`).
- **Index selection by name only**: :meth:`service.state.ServiceState.get` looks names up in
  the configured mapping; no request field is ever joined to a filesystem path.
"""

from __future__ import annotations

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


class BodyLimitMiddleware:
    """Pure ASGI middleware: 413 for request bodies over ``max_bytes``.

    Args:
        app: the wrapped application.
        max_bytes: largest body accepted.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            return await self._refuse(scope, receive, send)
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
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
        except _TooLarge:
            if not started:
                await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        exc = _TooLarge(self.max_bytes)
        # Connection: close, since the unread rest of the body must not be parsed as a request.
        response = error_response(413, "payload_too_large", exc.detail, headers=exc.headers)
        await response(scope, receive, send)

