"""Connections, slow clients and header size are bounded, on a live server over real sockets.

The server runs with small limits (20 connections, 4 KiB heads, 1 s head and body timeouts) so
that every loop here ends within a few seconds; each socket has its own deadline.
"""

from __future__ import annotations

import json
import socket
import time

import httpx
import pytest

LIMITS = ("--max-connections", "20", "--max-header-bytes", "4096", "--header-timeout", "1", "--body-timeout", "1")


@pytest.fixture(scope="module")
def guarded(bm25_index, tmp_path_factory, start_server):
    srv = start_server(tmp_path_factory.mktemp("guarded"), [f"lexical={bm25_index}"], extra=LIMITS)
    yield srv
    srv.stop()


def connect(srv) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", int(srv.url.rsplit(":", 1)[1])), timeout=10)
    return sock


def read_response(sock: socket.socket, within: float = 10.0) -> tuple[int | None, dict, float]:
    """(status, JSON body, seconds waited) of the one response on ``sock``; status None if closed silently."""
    t0 = time.monotonic()
    sock.settimeout(within)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    waited = time.monotonic() - t0
    if not data:
        return None, {}, waited
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body) if body.startswith(b"{") else {}, waited


def test_trickled_headers_get_408_after_the_header_timeout(guarded):
    # Given a client sending one header line every 0.2 s, never finishing (slowloris)
    sock = connect(guarded)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    t0 = time.monotonic()
    sock.setblocking(False)
    closed = False
    for i in range(50):  # at most 10 s
        try:
            sock.sendall(b"X-Slow-%d: 1\r\n" % i)
        except OSError:
            closed = True
            break
        time.sleep(0.2)
        try:
            if sock.recv(1, socket.MSG_PEEK):
                break
        except BlockingIOError:
            pass
    # Then the server answered 408 about 1 s after the connection opened, and closed it
    status, body, _ = read_response(sock)
    elapsed = time.monotonic() - t0
    assert closed or status == 408
    assert status in (408, None) and 0.8 < elapsed < 4
    if status:
        assert body["error"]["code"] == "request_timeout"


def test_a_silent_connection_is_closed(guarded):
    # Given a connection that sends nothing
    sock = connect(guarded)
    # When / Then it is closed without a response after the header timeout
    status, _, waited = read_response(sock)
    assert status is None and 0.8 < waited < 4


def test_keep_alive_connection_trickling_its_second_request_is_cut_off(guarded):
    # Given a kept-alive connection whose first request was served
    sock = connect(guarded)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    first = sock.recv(65536)
    assert first.startswith(b"HTTP/1.1 200")
    # When the next request's head trickles in (each byte would reset uvicorn's keep-alive timer)
    t0 = time.monotonic()
    try:
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")
        for i in range(20):
            sock.sendall(b"X-Slow-%d: 1\r\n" % i)
            time.sleep(0.2)
    except OSError:
        pass
    status, _, _ = read_response(sock)
    # Then it is answered 408 within the header timeout
    assert status == 408 and time.monotonic() - t0 < 5


def test_a_head_over_the_limit_is_431_and_memory_is_not_spent_on_it(guarded):
    # Given a 5 MB header value sent in 64 KiB pieces
    sock = connect(guarded)
    sent = 0
    try:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
        while sent < 5_000_000:
            sock.sendall(b"a" * 65536)
            sent += 65536
    except OSError:
        pass  # the server stopped reading after its linger time
    # Then the answer is 431, and the server still serves
    status, body, _ = read_response(sock)
    assert status == 431 and body["error"]["code"] == "headers_too_large" and "4096" in body["error"]["message"]
    assert httpx.get(guarded.url + "/healthz").status_code == 200


def test_a_head_under_the_limit_with_a_large_body_is_served(guarded):
    # Given a small head followed by a body larger than max_header_bytes, in one write
    body = json.dumps({"query": "sky " * 2000, "k": 1, "mode": "bm25"}).encode()
    r = httpx.post(guarded.url + "/search", content=body, headers={"content-type": "application/json"})
    # Then the head limit does not count the body (the query is over max_query_chars: a 422, not a 431)
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"


def test_connections_over_the_cap_get_503_at_once(guarded):
    # Given max_connections (20) connections held open without a request
    held = [connect(guarded) for _ in range(20)]
    try:
        time.sleep(0.2)
        # When one more connects
        extra = connect(guarded)
        status, body, waited = read_response(extra, within=5)
        # Then it is refused at once, with a Retry-After
        assert status == 503 and body["error"]["code"] == "too_many_connections" and waited < 0.9
    finally:
        for sock in held:
            sock.close()
    # And once the slow ones are gone, requests are served again
    deadline = time.monotonic() + 5
    while httpx.get(guarded.url + "/healthz").status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert httpx.get(guarded.url + "/healthz").status_code == 200


def test_a_stalled_body_is_408(guarded):
    # Given a request that declares 100 bytes of body and sends 10
    sock = connect(guarded)
    sock.sendall(b"POST /search HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"query\":")
    # When / Then the body timeout (1 s) ends it with 408
    status, body, waited = read_response(sock)
    assert status == 408 and body["error"]["code"] == "request_timeout" and 0.8 < waited < 4


def test_limit_settings_have_sane_defaults_and_bounds(monkeypatch):
    from pydantic import ValidationError

    from service.settings import Settings

    s = Settings()
    assert (s.max_connections, s.max_header_bytes, s.header_timeout_s, s.body_timeout_s) == (512, 32768, 10.0, 10.0)
    monkeypatch.setenv("RAG_MAX_HEADER_BYTES", "100")
    with pytest.raises(ValidationError, match="max_header_bytes"):
        Settings()
