"""Connection-level limits that uvicorn does not enforce: open connections, request-head size and time.

What uvicorn (0.29–0.54) offers and why it is not enough on its own:

- ``limit_concurrency`` answers 503 only once a request's headers are complete, so connections
  that trickle their headers (slowloris) are never counted against anything, and the cap turns
  *legitimate* requests away while the slow connections hold it;
- ``timeout_keep_alive`` closes a connection idle *between* requests; any byte cancels it, and a
  fresh connection that sends nothing or one byte a second is never timed out;
- the httptools parser (used whenever it is installed) has no header-size limit: a 50 MB header
  is buffered and answered. h11's ``h11_max_incomplete_event_size`` covers only the h11 parser.

:class:`GuardedHTTPProtocol` adds, whichever parser uvicorn picks (its ``AutoHTTPProtocol``):

- ``max_connections``: a connection opened while that many are open is answered 503 (with
  ``Retry-After``) and closed before anything is read;
- ``header_timeout_s``: the request head (request line and headers) must arrive within this many
  seconds of the connection opening, or of the first byte of the next request on a kept-alive
  connection; else 408 (or a plain close if nothing arrived) — what nginx's
  ``client_header_timeout`` and Apache's ``mod_reqtimeout`` do;
- ``max_header_bytes``: a request head longer than this is answered 431 at once.

Refused connections get a JSON error body in the service's shape and a *lingering close*: the
response is sent, the write side shut, and whatever the client still sends is read and dropped
for up to :data:`LINGER_S` seconds, so the client reads the status instead of a connection reset.
Slow request *bodies* are bounded in :class:`service.security.BodyLimitMiddleware`.

The head is found by its blank line (``\\r\\n\\r\\n``, or ``\\n\\n`` as lenient parsers accept),
counted before the parser sees the bytes; only ``asyncio.Protocol`` methods and the protocol's
``app`` attribute, which both uvicorn protocols set from the config, are used.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar

from uvicorn.protocols.http.auto import AutoHTTPProtocol
from uvicorn.protocols.http.h11_impl import H11Protocol

#: Seconds a refused connection is drained before it is closed (the response reaches the client).
LINGER_S = 2.0
_REASONS = {408: "Request Timeout", 431: "Request Header Fields Too Large", 503: "Service Unavailable"}


@dataclass(frozen=True)
class ConnectionLimits:
    """The limits :class:`GuardedHTTPProtocol` enforces, per worker process."""

    max_connections: int
    max_header_bytes: int
    header_timeout_s: float


@lru_cache(maxsize=1)
def limits_from_settings() -> ConnectionLimits:
    """The limits of this process's :class:`~service.settings.Settings` (``RAG_*``), read once."""
    from service.settings import Settings

    s = Settings()
    return ConnectionLimits(s.max_connections, s.max_header_bytes, s.header_timeout_s)


def refusal(status: int, code: str, message: str, extra: dict[str, str] | None = None) -> bytes:
    """A complete HTTP/1.1 response closing the connection, with the service's JSON error body."""
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    headers = {"content-type": "application/json", "content-length": str(len(body)), "connection": "close", **(extra or {})}
    head = f"HTTP/1.1 {status} {_REASONS[status]}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return head.encode("latin-1") + b"\r\n" + body


class _Guard:
    """The limits, mixed in front of a uvicorn HTTP protocol class (httptools or h11)."""

    limits: ClassVar[ConnectionLimits | None] = None

    def __init__(self, config: Any, server_state: Any, app_state: dict[str, Any], _loop: Any = None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._limits = self.limits or limits_from_settings()
        self._open = server_state.connections
        self._head_bytes = 0
        self._awaiting_head = True
        self._tail = b""  # the last 3 bytes seen, to find a blank line split across reads
        self._timer: asyncio.TimerHandle | None = None
        self._refused = False
        inner = self.app

        async def app(scope: Any, receive: Any, send: Any) -> None:
            try:
                await inner(scope, receive, send)
            finally:  # the next request on this connection starts a new head
                self._awaiting_head, self._head_bytes, self._tail = True, 0, b""

        self.app = app

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self._open) > self._limits.max_connections:
            self._refuse(503, "too_many_connections",
                         f"the server has {self._limits.max_connections} connections open (max_connections); retry shortly",
                         {"retry-after": "1"})
            return
        self._start_timer()

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # lingering close: drop what the client still sends
        if self._awaiting_head:
            if self._timer is None:  # first byte of a request on a kept-alive connection
                self._start_timer()
            scan = self._tail + data
            end = min((i + len(m) for m in (b"\r\n\r\n", b"\n\n") if (i := scan.find(m)) >= 0), default=-1)
            self._head_bytes += len(data) if end < 0 else end - len(self._tail)
            if self._head_bytes > self._limits.max_header_bytes:
                self._refuse(431, "headers_too_large", f"the request head is over {self._limits.max_header_bytes} bytes "
                             "(max_header_bytes); send shorter headers")
                return
            if end >= 0:
                self._awaiting_head = False
                self._cancel_timer()
            else:
                self._tail = scan[-3:]
        super().data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        super().connection_lost(exc)

    def _start_timer(self) -> None:
        self._cancel_timer()
        self._timer = asyncio.get_running_loop().call_later(self._limits.header_timeout_s, self._head_timed_out)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _head_timed_out(self) -> None:
        self._timer = None
        if not self._awaiting_head or self._refused or self.transport.is_closing():
            return
        if self._head_bytes == 0:
            self.transport.close()  # nothing was asked: nothing to answer
            return
        self._refuse(408, "request_timeout", f"the request head did not arrive within {self._limits.header_timeout_s:g} s "
                     "(header_timeout_s)")

    def _refuse(self, status: int, code: str, message: str, extra: dict[str, str] | None = None) -> None:
        self._refused = True
        self._cancel_timer()
        transport = self.transport
        transport.write(refusal(status, code, message, extra))
        if transport.can_write_eof():
            transport.write_eof()
        asyncio.get_running_loop().call_later(LINGER_S, transport.close)


class GuardedHTTPProtocol(_Guard, AutoHTTPProtocol):  # type: ignore[misc, valid-type]
    """uvicorn's HTTP protocol (httptools when installed, else h11) with a connection cap, a
    request-head timeout and a head-size limit.

    Use as ``uvicorn.run(..., http="service.connections:GuardedHTTPProtocol")``; the limits come
    from :attr:`limits` when set (tests) or from the ``RAG_*`` settings of the process.
    """


class GuardedH11Protocol(_Guard, H11Protocol):  # type: ignore[misc, valid-type]
    """The same limits over the pure-Python h11 parser (``--http h11`` equivalents, tests)."""
