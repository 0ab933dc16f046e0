"""The benchmarks' HTTP client: a server that stops answering fails the request, never hangs the run."""

from __future__ import annotations

import asyncio
import time

from eval.benchmarks import service_http
from eval.benchmarks.service_http import TRANSPORT_ERRORS, Connection, run_cell


async def _silent_server() -> tuple[asyncio.base_events.Server, int, list]:
    """A loopback server that accepts connections and reads, but never writes a byte."""
    held = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        await reader.read(1 << 16)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], held


def test_a_request_to_a_server_that_never_answers_raises_a_transport_error_after_its_timeout():
    async def go():
        server, port, _ = await _silent_server()
        async with server:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            conn = Connection(reader, writer, timeout=0.3)
            t0 = time.perf_counter()
            try:
                await conn.post("/search", b"{}")
            except TRANSPORT_ERRORS as exc:
                return type(exc), time.perf_counter() - t0
            finally:
                conn.close()
        return None, time.perf_counter() - t0

    kind, seconds = asyncio.run(go())
    # TimeoutError is an OSError, so every caller's transport-error branch counts it
    assert kind is TimeoutError and issubclass(kind, OSError)
    assert 0.3 <= seconds < 5


def test_a_load_cell_against_a_silent_server_ends_with_its_requests_counted_as_errors(monkeypatch):
    monkeypatch.setattr(service_http, "REQUEST_TIMEOUT", 0.2)

    async def go():
        server, port, _ = await _silent_server()
        async with server:
            return await run_cell(port, "bm25", 2, ["q"], 3, requests=4, max_seconds=30)

    t0 = time.perf_counter()
    cell = asyncio.run(go())
    # Given 2 clients and 4 requests to a server that never answers, the cell ends after about
    # two timeouts per client with all 4 requests failed and none timed as a latency
    assert cell["requests"] == 0 and cell["errors"] == 4
    assert all(e.startswith("TimeoutError") for e in cell["first_errors"])
    assert time.perf_counter() - t0 < 10
