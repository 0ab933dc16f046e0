"""The load generator the service benchmarks share: keep-alive HTTP clients, a served index, queries.

:class:`Connection` is a minimal asyncio HTTP/1.1 client rather than httpx: on a 2-core machine
the load generator shares the CPU with the server, and httpx spends several times more CPU per
request than the server's own HTTP layer, which would measure the client. :func:`run_cell` runs
``C`` such clients in a closed loop (each sends its next request when the previous answer
arrived), so the offered load is exactly "C clients". Only 127.0.0.1 is ever contacted.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

HOST = "127.0.0.1"
# What a request can fail with on the client side: a dropped or refused connection, a torn
# answer, a body that is not JSON or lacks the expected field.
# Seconds one request (or a connect) may take before it counts as failed: far above any latency
# measured here (a hybrid search under 32 clients answers in < 1 s, an upsert commit in < 5 s).
REQUEST_TIMEOUT = 120.0
TRANSPORT_ERRORS = (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, KeyError, TypeError)


class Connection:
    """One keep-alive HTTP/1.1 connection that sends JSON and reads the JSON answer.

    Args:
        reader, writer: the stream pair of an open TCP connection.
        headers: extra request headers sent with every request (e.g. ``Authorization``).
        timeout: seconds one request may take, from sending to the last byte of the answer
            (default :data:`REQUEST_TIMEOUT`). Past it the request raises ``TimeoutError`` (an
            ``OSError``, so one of :data:`TRANSPORT_ERRORS`) and the connection must be replaced:
            a server that stops answering fails the run instead of hanging it.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 headers: dict[str, str] | None = None, timeout: float | None = None) -> None:
        self.reader, self.writer = reader, writer
        self.extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        self.timeout = REQUEST_TIMEOUT if timeout is None else timeout

    @classmethod
    async def open(cls, port: int, headers: dict[str, str] | None = None) -> Connection:
        return cls(*await asyncio.wait_for(asyncio.open_connection(HOST, port), REQUEST_TIMEOUT), headers=headers)

    async def request(self, method: str, path: str, body: bytes) -> tuple[int, bytes]:
        """Send one request; returns (status, body). Raises one of :data:`TRANSPORT_ERRORS`."""
        return await asyncio.wait_for(self._exchange(method, path, body), self.timeout)

    async def _exchange(self, method: str, path: str, body: bytes) -> tuple[int, bytes]:
        head = (f"{method} {path} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n{self.extra}"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        self.writer.write(head + body)
        status_line = await self.reader.readuntil(b"\r\n")
        length = 0
        while (line := await self.reader.readuntil(b"\r\n")) != b"\r\n":
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return int(status_line.split()[1]), await self.reader.readexactly(length)

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        return await self.request("POST", path, body)

    def close(self) -> None:
        self.writer.close()


async def reconnect(conn: Connection | None, port: int, headers: dict[str, str] | None = None) -> Connection | None:
    """Close ``conn`` and open a fresh one; ``None`` (after a 0.1 s pause) when the server refuses."""
    if conn is not None:
        conn.close()
    try:
        return await Connection.open(port, headers)
    except OSError:
        await asyncio.sleep(0.1)  # a server that is gone is not hammered in a tight loop
        return None


def latency_summary(seconds: Sequence[float]) -> dict[str, float | None]:
    """p50/p95/p99 in milliseconds (``None`` without samples)."""
    ms = np.asarray(seconds, dtype=float) * 1e3  # (n,)
    return {f"p{q}_ms": round(float(np.percentile(ms, q)), 2) if ms.size else None for q in (50, 95, 99)}


async def run_cell(port: int, mode: str, clients: int, queries: list[str], k: int, requests: int,
                   max_seconds: float, headers: dict[str, str] | None = None) -> dict:
    """``requests`` searches (or ``max_seconds``) from ``clients`` concurrent connections.

    Every answer is checked: status 200 and exactly ``k`` hits; anything else (and any transport
    error) is counted in ``errors``, the first three quoted in ``first_errors``.
    """
    bodies = [json.dumps({"query": q, "k": k, "mode": mode}).encode() for q in queries]
    latencies: list[float] = []
    errors: list[str] = []
    counter = iter(range(requests))
    deadline = time.perf_counter() + max_seconds

    async def client() -> None:
        conn = await reconnect(None, port, headers)
        try:
            for i in counter:
                if time.perf_counter() > deadline:
                    break
                if conn is None:
                    errors.append(f"connection refused by 127.0.0.1:{port}")
                    conn = await reconnect(None, port, headers)
                    continue
                t0 = time.perf_counter()
                try:
                    status, payload = await conn.post("/search", bodies[i % len(bodies)])
                    ok = status == 200 and len(json.loads(payload)["hits"]) == k
                except TRANSPORT_ERRORS as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
                    conn = await reconnect(conn, port, headers)
                    continue
                latencies.append(time.perf_counter() - t0)
                if not ok:
                    errors.append(f"HTTP {status}: {payload[:200]!r}")
        finally:
            if conn is not None:
                conn.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    wall = time.perf_counter() - t0
    lat = latency_summary(latencies)
    return {"mode": mode, "clients": clients, "requests": len(latencies), "errors": len(errors),
            "first_errors": errors[:3], "seconds": round(wall, 3), "rps": round(len(latencies) / wall, 1),
            "p50_ms": lat["p50_ms"], "p95_ms": lat["p95_ms"], "p99_ms": lat["p99_ms"]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def start_server(index: Path, workers: int, extra: list[str], *, env: dict[str, str] | None = None,
                 log: Path | None = None, name: str = "bench") -> tuple[subprocess.Popen, int]:
    """``rag serve --index NAME=INDEX`` on a free loopback port; returns once ``/readyz`` is 200 (≤ 10 min).

    Args:
        extra: further ``rag serve`` arguments (``--writable``, ``--encoder-backend onnx-int8``).
        env: extra environment variables for the server (``RAG_API_KEY``).
        log: file for the server's output (default: discarded); its tail is quoted if it fails to start.

    Raises:
        SystemExit: the server exited or was not ready within 10 minutes.
    """
    import httpx

    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", **(env or {})}
    cmd = [sys.executable, "-m", "rag.cli", "serve", "--index", f"{name}={index}", "--host", HOST,
           "--port", str(port), "--workers", str(workers), "--log-level", "warning", *extra]
    out = log.open("w") if log else subprocess.DEVNULL
    proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"http://{HOST}:{port}/readyz", timeout=5).status_code == 200:
                return proc, port
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    stop_server(proc)
    tail = "\n" + "\n".join(log.read_text(errors="replace").splitlines()[-20:]) if log else ""
    raise SystemExit(f"server did not become ready (exit status {proc.poll()}){tail}")


def stop_server(proc: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL after 60 s."""
    proc.terminate()
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def load_query_texts(path: Path, limit: int, qrels: Path | None = None) -> list[str]:
    """The first ``limit`` query texts of ``path`` (BEIR JSONL or TSV), only those judged in ``qrels`` if given.

    Raises:
        InputError: a bad queries or qrels file (names the file and line), or no query left.
    """
    from indexes.errors import InputError
    from rag.queries import load_qrels, load_queries

    queries = load_queries(path)
    if qrels is not None:
        judged = load_qrels(qrels)
        queries = {qid: text for qid, text in queries.items() if qid in judged}
        if not queries:
            raise InputError(f"{qrels}: judges none of the queries of {path}; pass the qrels of the same collection")
    return list(queries.values())[:limit]
