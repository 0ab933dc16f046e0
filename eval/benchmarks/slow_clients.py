"""Hostile-client benchmark of ``rag serve``: slow headers (slowloris) and one huge header.

Reproduces issue 12.15's scenario against a server started from any source tree (``--server-tree``,
so the same script measures the code before and after a change):

1. ``--slow`` connections (500) each send a request line and then one header line per second,
   never finishing the head, for at most ``--hold`` seconds (40). Recorded: the server's open
   file descriptors (``/proc/PID/fd``) before and at most, how long the server kept each slow
   connection open, and whether a normal ``GET /healthz`` on a fresh connection is served while
   they trickle (one probe per second).
2. One request whose header is ``--big-mb`` MB (50): the status the server answers (or "reset"),
   the seconds until it answered, and the server's resident memory before and at its peak
   (``VmRSS``/``VmHWM``).

Only 127.0.0.1 is contacted; the server is a BM25-only index of ``data/sample`` built in a
temporary folder, and is stopped at the end. Every loop is bounded by ``--hold`` seconds.

Example:
    python -m eval.benchmarks.slow_clients --server-tree /path/to/checkout --out build/slow-before.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _memory_mb(pid: int) -> dict[str, float]:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return {k: int(fields[k].split()[0]) / 1024 for k in ("VmRSS", "VmHWM")}


async def _slow_client(port: int, hold: float, t0: float) -> float:
    """Trickle header lines until the server closes the connection; seconds it stayed open."""
    try:
        reader, writer = await asyncio.open_connection(HOST, port)
    except OSError:
        return 0.0
    opened = time.monotonic()
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        i = 0
        while time.monotonic() - t0 < hold:
            try:
                data = await asyncio.wait_for(reader.read(65536), timeout=1.0)
                if not data or reader.at_eof():
                    break  # answered (408/503) or closed
            except asyncio.TimeoutError:
                pass
            writer.write(b"X-Slow-%d: 1\r\n" % i)
            i += 1
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()
    return time.monotonic() - opened


async def _probe(port: int) -> float | None:
    """Latency (s) of one GET /healthz on a fresh connection; None if it failed within 5 s."""
    t = time.monotonic()
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), 5)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        line = await asyncio.wait_for(reader.readline(), 5)
        writer.close()
        return time.monotonic() - t if line.startswith(b"HTTP/1.1 200") else None
    except (asyncio.TimeoutError, OSError):
        return None


async def slowloris(port: int, pid: int, n: int, hold: float) -> dict:
    fds_before = _fds(pid)
    t0 = time.monotonic()
    clients = [asyncio.ensure_future(_slow_client(port, hold, t0)) for _ in range(n)]
    fds, probes = [], []
    while time.monotonic() - t0 < hold + 2 and not all(c.done() for c in clients):
        fds.append(_fds(pid))
        probes.append(await _probe(port))
        await asyncio.sleep(max(0.0, 1.0 - (probes[-1] or 0)))
    lifetimes = np.array(await asyncio.gather(*clients))
    ok = [p for p in probes if p is not None]
    return {"connections": n, "hold_s": hold, "server_fds_before": fds_before, "server_fds_max": max(fds),
            "open_s_median": round(float(np.median(lifetimes)), 1), "open_s_max": round(float(lifetimes.max()), 1),
            "probes_ok": f"{len(ok)}/{len(probes)}", "probe_ms_max": round(1000 * max(ok), 1) if ok else None}


def big_header(port: int, pid: int, megabytes: int) -> dict:
    before = _memory_mb(pid)
    t = time.monotonic()
    status = "reset"
    with socket.create_connection((HOST, port), timeout=60) as sock:
        try:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
            chunk = b"a" * (1 << 20)
            for _ in range(megabytes):
                sock.sendall(chunk)
            sock.sendall(b"\r\n\r\n")
        except OSError:
            pass
        try:
            line = sock.makefile("rb").readline()
            status = line.split()[1].decode() if line else "closed"
        except OSError:
            pass
    seconds = time.monotonic() - t
    time.sleep(0.5)
    after = _memory_mb(pid)
    return {"header_mb": megabytes, "status": status, "seconds": round(seconds, 2), "rss_mb_before": round(before["VmRSS"]),
            "rss_mb_peak": round(after["VmHWM"])}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--server-tree", type=Path, default=ROOT, help="source tree the server runs from (PYTHONPATH)")
    p.add_argument("--slow", type=int, default=500)
    p.add_argument("--hold", type=float, default=40.0)
    p.add_argument("--big-mb", type=int, default=50)
    p.add_argument("--serve-args", default="", help="extra `rag serve` options, e.g. '--max-connections 100'")
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    # The server runs in a temporary folder: `python -m` puts the working directory first on sys.path.
    env.update(PYTHONPATH=str(args.server_tree.resolve()), HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    with tempfile.TemporaryDirectory() as tmp:
        index = Path(tmp) / "sample"
        subprocess.run([sys.executable, "-m", "rag.cli", "index", str(ROOT / "data/sample/corpus.jsonl"), "--out", str(index),
                        "--no-dense"], env=env, check=True, capture_output=True, cwd=tmp)
        port = _free_port()
        log = open(Path(tmp) / "server.log", "w")  # noqa: SIM115 - closed below
        proc = subprocess.Popen([sys.executable, "-m", "rag.cli", "serve", "--index", str(index), "--port", str(port),
                                 "--log-level", "warning", *args.serve_args.split()],
                                env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp)
        try:
            deadline = time.monotonic() + 60
            while asyncio.run(_probe(port)) is None:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit(f"server did not start:\n{Path(tmp, 'server.log').read_text()}")
                time.sleep(0.3)
            result = {"server_tree": str(args.server_tree), "serve_args": args.serve_args,
                      "slowloris": asyncio.run(slowloris(port, proc.pid, args.slow, args.hold)),
                      "big_header": big_header(port, proc.pid, args.big_mb), "server_alive": asyncio.run(_probe(port)) is not None}
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            log.close()
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
