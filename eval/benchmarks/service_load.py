"""Load benchmark of the REST service: requests/s and p50/p99 latency per mode and concurrency.

Starts ``rag serve`` on a free loopback port (or uses ``--url``), waits until ``/readyz`` is 200,
then for every mode (bm25, dense, hybrid) and every number of concurrent clients (1, 8, 32)
sends ``POST /search`` requests with real queries, after a short warm-up. Each client is a
keep-alive HTTP/1.1 connection that sends its next request when the previous answer arrived
(closed loop), so the offered load is exactly "C clients". Every response is checked: status
200 and ``k`` hits, anything else counts as an error. Bounded: at most ``--requests`` requests
and ``--max-seconds`` seconds per cell; only 127.0.0.1 is ever contacted.

The clients are a minimal asyncio HTTP/1.1 implementation rather than httpx: on a 2-core
machine the load generator shares the CPU with the server, and httpx spends several times more
CPU per request than the server's own HTTP layer, which would measure the client.

Example:
    python -m eval.benchmarks.service_load --index build/scifact \\
        --queries ../shared/data/scifact/queries.jsonl --out build/service-load.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HOST = "127.0.0.1"


class Connection:
    """One keep-alive HTTP/1.1 connection that POSTs JSON and reads the JSON answer."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        return cls(*await asyncio.open_connection(HOST, port))

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        head = (f"POST {path} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        self.writer.write(head + body)
        status_line = await self.reader.readuntil(b"\r\n")
        length = 0
        while (line := await self.reader.readuntil(b"\r\n")) != b"\r\n":
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return int(status_line.split()[1]), await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


async def run_cell(port: int, mode: str, clients: int, queries: list[str], k: int, requests: int,
                   max_seconds: float) -> dict:
    """``requests`` searches (or ``max_seconds``) from ``clients`` concurrent connections."""
    bodies = [json.dumps({"query": q, "k": k, "mode": mode}).encode() for q in queries]
    latencies: list[float] = []
    errors: list[str] = []
    counter = iter(range(requests))
    deadline = time.perf_counter() + max_seconds

    async def client() -> None:
        conn = await Connection.open(port)
        try:
            for i in counter:
                if time.perf_counter() > deadline:
                    break
                t0 = time.perf_counter()
                try:
                    status, payload = await conn.post("/search", bodies[i % len(bodies)])
                    ok = status == 200 and len(json.loads(payload)["hits"]) == k
                except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
                    conn.close()
                    conn = await Connection.open(port)
                    continue
                latencies.append(time.perf_counter() - t0)
                if not ok:
                    errors.append(f"HTTP {status}: {payload[:200]!r}")
        finally:
            conn.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    wall = time.perf_counter() - t0
    lat = np.asarray(latencies) * 1e3  # (n,) milliseconds
    return {"mode": mode, "clients": clients, "requests": len(latencies), "errors": len(errors),
            "first_errors": errors[:3], "seconds": round(wall, 3), "rps": round(len(latencies) / wall, 1),
            "p50_ms": round(float(np.percentile(lat, 50)), 2) if lat.size else None,
            "p99_ms": round(float(np.percentile(lat, 99)), 2) if lat.size else None}


def start_server(index: Path, workers: int, extra: list[str]) -> tuple[subprocess.Popen, int]:
    """``rag serve`` on a free loopback port; returns once ``/readyz`` is 200 (≤ 10 min)."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        port = s.getsockname()[1]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    cmd = [sys.executable, "-m", "rag.cli", "serve", "--index", f"bench={index}", "--host", HOST,
           "--port", str(port), "--workers", str(workers), "--log-level", "warning", *extra]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import httpx

    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"http://{HOST}:{port}/readyz", timeout=5).status_code == 200:
                return proc, port
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    proc.terminate()
    raise SystemExit(f"server did not become ready (exit status {proc.poll()})")


def batch_sizes(port: int) -> dict[str, float]:
    """Mean queries per encoder call so far, from ``/metrics``."""
    import httpx

    text = httpx.get(f"http://{HOST}:{port}/metrics", timeout=10).text
    values = {line.split()[0]: float(line.split()[1]) for line in text.splitlines() if line.startswith("rag_encoder_batch_size_")}
    total, count = values.get("rag_encoder_batch_size_sum", 0.0), values.get("rag_encoder_batch_size_count", 0.0)
    return {"encoder_calls": count, "mean_batch": round(total / count, 2) if count else 0.0}


def load_queries(path: Path, limit: int) -> list[str]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f if line.strip()][:limit]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--index", type=Path, default=Path("build/scifact"))
    p.add_argument("--queries", type=Path, default=Path("../shared/data/scifact/queries.jsonl"))
    p.add_argument("--modes", nargs="+", default=["bm25", "dense", "hybrid"])
    p.add_argument("--clients", nargs="+", type=int, default=[1, 8, 32])
    p.add_argument("--requests", type=int, default=2000, help="requests per cell at most")
    p.add_argument("--max-seconds", type=float, default=15.0, help="seconds per cell at most")
    p.add_argument("--warmup", type=int, default=64)
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--port", type=int, help="use a server already listening on 127.0.0.1:PORT")
    p.add_argument("--serve-arg", action="append", default=[], help="extra `rag serve` argument (repeatable)")
    p.add_argument("--out", type=Path, help="write the results as JSON here")
    args = p.parse_args(argv)

    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    queries = load_queries(args.queries, 1000)
    proc, port = (None, args.port) if args.port else start_server(args.index, args.workers, args.serve_arg)
    rows = []
    try:
        for mode in args.modes:
            asyncio.run(run_cell(port, mode, 8, queries[::-1], args.k, args.warmup, 60))
            for clients in args.clients:
                before = batch_sizes(port)
                row = asyncio.run(run_cell(port, mode, clients, queries, args.k, args.requests, args.max_seconds))
                after = batch_sizes(port)
                calls = after["encoder_calls"] - before["encoder_calls"]
                row["encoder_calls"] = calls
                row["mean_encoder_batch"] = round(row["requests"] / calls, 2) if calls and mode != "bm25" else None
                rows.append(row)
                print(json.dumps(row), flush=True)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=60)
    result = {"index": str(args.index), "workers": args.workers, "k": args.k, "cpus": os.cpu_count(),
              "load_avg_1m": round(os.getloadavg()[0], 2), "rows": rows}
    print("\n| mode | clients | req/s | p50 ms | p99 ms | errors | mean encoder batch |\n|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['mode']} | {r['clients']} | {r['rps']} | {r['p50_ms']} | {r['p99_ms']} | {r['errors']} | {r['mean_encoder_batch'] or '–'} |")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 1 if any(r["errors"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
