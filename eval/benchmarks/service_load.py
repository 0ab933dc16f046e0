"""Load benchmark of the REST service: requests/s and p50/p99 latency per mode and concurrency.

Starts ``rag serve`` on a free loopback port (or uses ``--port``), waits until ``/readyz`` is 200,
then for every mode (bm25, dense, hybrid) and every number of concurrent clients (1, 8, 32)
sends ``POST /search`` requests with real queries, after a short warm-up. Each client is a
keep-alive HTTP/1.1 connection that sends its next request when the previous answer arrived
(closed loop), so the offered load is exactly "C clients". Every response is checked: status
200 and ``k`` hits, anything else counts as an error. Bounded: at most ``--requests`` requests
and ``--max-seconds`` seconds per cell; only 127.0.0.1 is ever contacted.

The clients are the minimal asyncio HTTP/1.1 implementation of :mod:`eval.benchmarks.service_http`
(not httpx, whose CPU cost per request would measure the client on a 2-core machine).

Example:
    python -m eval.benchmarks.service_load --index build/scifact \\
        --queries ../shared/data/scifact/queries.jsonl --out build/service-load.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path

from eval.benchmarks.service_http import HOST, load_query_texts, run_cell, start_server, stop_server


def batch_sizes(port: int) -> dict[str, float]:
    """Mean queries per encoder call so far, from ``/metrics``."""
    import httpx

    text = httpx.get(f"http://{HOST}:{port}/metrics", timeout=10).text
    values = {line.split()[0]: float(line.split()[1]) for line in text.splitlines() if line.startswith("rag_encoder_batch_size_")}
    total, count = values.get("rag_encoder_batch_size_sum", 0.0), values.get("rag_encoder_batch_size_count", 0.0)
    return {"encoder_calls": count, "mean_batch": round(total / count, 2) if count else 0.0}


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
    queries = load_query_texts(args.queries, 1000)
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
            stop_server(proc)
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
