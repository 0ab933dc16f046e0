"""The connection guard works over both of uvicorn's HTTP/1.1 parsers (httptools and h11).

An in-process uvicorn server per parser on 127.0.0.1 with a trivial ASGI app and tight limits
(3 connections, 1 KiB heads, 0.5 s head timeout); every socket has a deadline.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest
import uvicorn

from service.connections import ConnectionLimits, GuardedH11Protocol, GuardedHTTPProtocol

LIMITS = ConnectionLimits(max_connections=3, max_header_bytes=1024, header_timeout_s=0.5)


async def hello(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture(params=[GuardedHTTPProtocol, GuardedH11Protocol], ids=["auto", "h11"], scope="module")
def port(request):
    protocol = type("Tight", (request.param,), {"limits": LIMITS})
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(hello, host="127.0.0.1", port=free, http=protocol, lifespan="off", log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield free
    server.should_exit = True
    thread.join(10)


def exchange(port: int, data: bytes, within: float = 5.0) -> tuple[bytes, float]:
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=within) as sock:
        try:
            sock.sendall(data)
        except OSError:
            pass
        out = b""
        try:
            while chunk := sock.recv(65536):
                out += chunk
                if out.startswith(b"HTTP/1.1 200") and out.endswith(b"ok"):
                    break
        except (ConnectionResetError, TimeoutError):
            pass
    return out, time.monotonic() - t0


def test_normal_request_is_served(port):
    out, _ = exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 200") and out.endswith(b"ok")


def test_incomplete_head_times_out_with_408(port):
    out, waited = exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\n")
    assert out.startswith(b"HTTP/1.1 408") and b'"request_timeout"' in out and 0.4 < waited < 4


def test_long_head_is_431(port):
    out, _ = exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 5000 + b"\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 431") and b'"headers_too_large"' in out


def test_fourth_connection_is_503(port):
    held = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(3)]
    try:
        time.sleep(0.1)
        out, waited = exchange(port, b"")
        assert out.startswith(b"HTTP/1.1 503") and b"retry-after: 1" in out and waited < 0.4 + 2.5
    finally:
        for sock in held:
            sock.close()
