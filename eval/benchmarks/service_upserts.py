"""Searches under a stream of upserts: failed requests, latency against a no-write baseline, and
how soon each upserted document can be found (issue 15's service acceptance).

Copies ``--index`` to a temporary folder (the source is never written), serves the copy with
``rag serve --writable`` on a free loopback port, and runs two phases of ``--seconds`` each:

1. **baseline**: ``--clients`` keep-alive clients in a closed loop ``POST /search`` (``--mode``,
   ``k``) with the judged queries (:func:`eval.benchmarks.service_http.run_cell`);
2. **with upserts**: the same load while a writer sends one batch of ``--batch`` documents
   (``PUT /indexes/{name}/documents``) every ``1/--rate`` seconds: new documents with fresh ids
   (``upsert-<n>``), and ``--updates`` of each batch replacing earlier upserted ones. A document's
   text is a real passage of ``--corpus`` after a unique marker token (``zqx<n>``, one per version).

After each ``200`` a probe polls ``POST /search`` (mode bm25) for the batch's markers until every
version is visible: a hit of that document holds its new marker, and no hit holds the marker of
the version it replaced. A version's *visibility delay* runs from the ``200`` to the arrival of
the first answer that showed it, so it includes that search's own latency (an upper bound).
When the phase ends, every document's current version is checked once more.

A failed request is a search that is not ``200`` with ``k`` hits (per phase), an upsert that is
not ``200`` with the expected added/replaced counts, or a probe that is not ``200``. The run
passes when nothing failed and every version was visible within ``--visible-within`` (2 s) and
at the final check. ``--port`` measures a server already running instead (writing into its index).

Example:
    nice python -m eval.benchmarks.service_upserts --index build/scifact --seconds 30 \\
        --serve-arg=--encoder-backend --serve-arg=onnx-int8 --out build/service-upserts.json --write
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import itertools
import json
import os
import shlex
import shutil
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from eval.benchmarks.service_http import (HOST, TRANSPORT_ERRORS, latency_summary, load_query_texts, reconnect, run_cell,
                                          start_server, stop_server)

CHUNK = 40  # markers per probe query: 40 · ~8 characters stays far below the 1,000-character query limit


@dataclass
class Version:
    """One acknowledged upsert of one document."""

    doc_id: str
    marker: str
    old_marker: str | None  # the marker of the version it replaced (an update), else None
    acked: float = 0.0  # perf_counter() when its 200 arrived
    delay: float | None = None  # seconds from the 200 to the first answer that showed it
    first_probe: bool = False  # visible in the first answer asked for after the 200


@dataclass
class WriteLog:
    """What the writer and the probes saw during the write phase."""

    batch_seconds: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    batches: int = 0
    max_lag: float = 0.0  # seconds the latest batch was sent after its due time (the writer fell behind)
    versions: list[Version] = field(default_factory=list)
    current: dict[str, Version] = field(default_factory=dict)  # doc id -> latest acknowledged version
    settled: deque[str] = field(default_factory=deque)  # ids whose latest version was seen, oldest first
    probe_requests: int = 0
    probe_errors: list[str] = field(default_factory=list)


class ProbeError(Exception):
    """A probe search that did not answer 200."""


async def marker_hits(conn, markers: list[str], index: str) -> dict[str, set[str]]:
    """``{marker: ids of documents whose hit text holds it}`` from one bm25 search for all ``markers``."""
    body = json.dumps({"query": " ".join(markers), "k": min(100, 2 * len(markers)), "mode": "bm25", "index": index})
    status, payload = await conn.post("/search", body.encode())
    if status != 200:
        raise ProbeError(f"probe HTTP {status}: {payload[:200]!r}")
    wanted, out = set(markers), {m: set() for m in markers}
    for hit in json.loads(payload)["hits"]:
        for m in wanted.intersection(hit["text"].split()):
            out[m].add(hit["doc_id"])
    return out


async def visible(conn, versions: list[Version], index: str, log: WriteLog) -> set[int]:
    """Positions in ``versions`` that searches show: new marker found, replaced marker gone."""
    seen: set[int] = set()
    for start in range(0, len(versions), CHUNK):
        chunk = versions[start : start + CHUNK]
        new = await marker_hits(conn, [v.marker for v in chunk], index)
        olds = [v.old_marker for v in chunk if v.old_marker]
        stale = await marker_hits(conn, olds, index) if olds else {}
        log.probe_requests += 1 + bool(olds)
        seen.update(start + i for i, v in enumerate(chunk)
                    if v.doc_id in new[v.marker] and not (v.old_marker and stale[v.old_marker]))
    return seen


async def search_visible(conn, port: int, headers: dict, versions: list[Version], index: str, log: WriteLog,
                         tag: str = ""):
    """One search for ``versions``: ``(connection, indexes of the visible ones)``; ``None`` when the search
    failed (logged as a probe error, the connection renewed)."""
    try:
        if conn is None:
            raise OSError(f"connection refused by 127.0.0.1:{port}")
        return conn, await visible(conn, versions, index, log)
    except (*TRANSPORT_ERRORS, ProbeError) as exc:
        log.probe_errors.append(f"{tag}{type(exc).__name__}: {exc}")
        return await reconnect(conn, port, headers), None


async def probe(port: int, headers: dict, index: str, batch: list[Version], log: WriteLog, timeout: float) -> None:
    """Poll until every version of ``batch`` is visible or ``timeout`` seconds after its 200."""
    conn = await reconnect(None, port, headers)
    pending, first = list(batch), True
    deadline = batch[0].acked + timeout
    while pending and time.perf_counter() < deadline:
        conn, seen = await search_visible(conn, port, headers, pending, index, log)
        if seen is None:
            first = False
            continue
        now = time.perf_counter()
        for i in seen:
            pending[i].delay, pending[i].first_probe = now - pending[i].acked, first
        pending, first = [v for i, v in enumerate(pending) if i not in seen], False
        if pending:
            await asyncio.sleep(0.02)
    if conn is not None:
        conn.close()
    log.settled.extend(v.doc_id for v in batch if v.delay is not None and log.current.get(v.doc_id) is v)


async def writer(port: int, headers: dict, index: str, passages, args, log: WriteLog, probes: list) -> None:
    """``seconds · rate`` batches, batch i due at ``i/rate`` s (a late one goes at once; its lag is logged)."""
    conn = await reconnect(None, port, headers)
    numbers, markers = itertools.count(1), itertools.count(1)  # markers never repeat, even after a failed batch
    t0 = time.perf_counter()
    for i in range(max(1, round(args.seconds * args.rate))):
        await asyncio.sleep(max(0.0, t0 + i / args.rate - time.perf_counter()))
        log.max_lag = max(log.max_lag, time.perf_counter() - t0 - i / args.rate)
        updated = [log.settled.popleft() for _ in range(min(args.updates, args.batch, len(log.settled)))]
        ids = updated + [f"upsert-{next(numbers)}" for _ in range(args.batch - len(updated))]
        versions, docs = [], []
        for doc_id in ids:
            passage, old = next(passages), log.current.get(doc_id)
            v = Version(doc_id, f"zqx{next(markers)}", old.marker if old else None)
            versions.append(v)
            docs.append({"id": doc_id, "title": passage.title, "text": f"{v.marker} {passage.text}", "metadata": passage.metadata})
        body = json.dumps({"documents": docs}).encode()
        log.batches += 1
        sent = time.perf_counter()
        try:
            if conn is None:
                raise OSError(f"connection refused by 127.0.0.1:{port}")
            status, payload = await conn.request("PUT", f"/indexes/{index}/documents", body)
            report = json.loads(payload) if status == 200 else None
        except TRANSPORT_ERRORS as exc:
            log.failures.append(f"{type(exc).__name__}: {exc}")
            conn = await reconnect(conn, port, headers)
        else:
            acked = time.perf_counter()
            log.batch_seconds.append(acked - sent)
            if report is None:
                log.failures.append(f"HTTP {status}: {payload[:200]!r}")
            else:
                if (report.get("added"), report.get("replaced")) != (len(ids) - len(updated), len(updated)):
                    log.failures.append(f"expected {len(ids) - len(updated)} added, {len(updated)} replaced: {report}")
                for v in versions:
                    v.acked = acked
                    log.current[v.doc_id] = v
                log.versions.extend(versions)
                probes.append(asyncio.create_task(probe(port, headers, index, versions, log, args.probe_timeout)))
    if conn is not None:
        conn.close()


async def final_check(port: int, headers: dict, index: str, versions: list[Version], log: WriteLog) -> list[str]:
    """Ids whose current version a search does not show (all of a chunk when its search fails)."""
    conn = await reconnect(None, port, headers)
    missing = []
    for start in range(0, len(versions), CHUNK):
        chunk = versions[start : start + CHUNK]
        conn, seen = await search_visible(conn, port, headers, chunk, index, log, tag="final check: ")
        missing += [v.doc_id for i, v in enumerate(chunk) if i not in (seen or set())]
    if conn is not None:
        conn.close()
    return missing


async def write_phase(port: int, headers: dict, index: str, queries: list[str], passages, args) -> tuple[dict, WriteLog, list[str]]:
    log, probes = WriteLog(), []
    load, _ = await asyncio.gather(run_cell(port, args.mode, args.clients, queries, args.k, 10**9, args.seconds, headers),
                                   writer(port, headers, index, passages, args, log, probes))
    await asyncio.gather(*probes)
    return load, log, await final_check(port, headers, index, list(log.current.values()), log)


def summarize(baseline: dict, load: dict, log: WriteLog, missing: list[str], args) -> dict:
    """The report: both phases, the upserts, visibility, the final check and the verdict."""
    delays = [v.delay for v in log.versions if v.delay is not None]
    within = sum(d <= args.visible_within for d in delays)
    vis = latency_summary(delays)
    batch = latency_summary(log.batch_seconds)
    upserts = {"batches": log.batches, "failed": len(log.failures), "first_failures": log.failures[:3],
               "acknowledged_documents": len(log.versions), "updates": sum(v.old_marker is not None for v in log.versions),
               "max_lag_s": round(log.max_lag, 3),
               "p50_ms": batch["p50_ms"], "p99_ms": batch["p99_ms"]}
    visibility = {"versions": len(log.versions), "visible": len(delays), "within_s": args.visible_within,
                  "not_within": len(log.versions) - within, "first_probe": sum(v.first_probe for v in log.versions),
                  "max_ms": round(max(delays) * 1e3, 2) if delays else None, "p99_ms": vis["p99_ms"],
                  "probe_requests": log.probe_requests, "probe_errors": len(log.probe_errors),
                  "first_probe_errors": log.probe_errors[:3]}
    final = {"documents": len(log.current), "missing": len(missing), "first_missing": missing[:5]}
    failed = baseline["errors"] + load["errors"] + len(log.failures) + len(log.probe_errors)
    ok = failed == 0 and len(log.versions) > 0 and visibility["not_within"] == 0 and not missing
    return {"baseline": baseline, "with_upserts": load, "upserts": upserts, "visibility": visibility,
            "final_check": final, "failed_requests": failed, "pass": ok}


def markdown(r: dict, command: str, machine: str, date: str) -> str:
    """The ``service-upserts`` section of docs/benchmarks.md."""
    b, w, u, v, f = r["baseline"], r["with_upserts"], r["upserts"], r["visibility"], r["final_check"]
    rows = "\n".join(f"| {name} | {p['requests']} | {p['errors']} | {p['rps']} | {p['p50_ms']} | {p['p95_ms']} | {p['p99_ms']} |"
                     for name, p in (("baseline (no writes)", b), (f"{r['batch']}-document upserts at {r['rate']:g}/s", w)))
    verdict = "PASS" if r["pass"] else "FAIL"
    return f"""## Service: searches while documents are upserted

{r['clients']} clients search `{r['index']}` ({r['mode']}, k={r['k']}, workers={r['workers']}) for {r['seconds']:g} s without writes, then
{r['seconds']:g} s while one batch of {r['batch']} documents ({r['updates']} of them updates of earlier upserted ones) is
`PUT` every {1 / r['rate']:g} s to `rag serve --writable` (a copy of the index). Each document's text is a passage of
`{r['corpus']}` after a unique marker; a probe searches (bm25) for the markers after each `200` until every version is visible
(its delay includes that search's latency). Measured {date} on {machine}
(shared 2-core VM, load average {r['load_avg_1m']} at the end). Command:

```bash
{command}
```

| phase | requests | failed | req/s | p50 ms | p95 ms | p99 ms |
|---|---|---|---|---|---|---|
{rows}

Upserts: {u['batches']} batches (sent at most {u['max_lag_s']} s after their due time), {u['failed']} failed, {u['acknowledged_documents']} document versions
acknowledged ({u['updates']} updates); batch latency p50 {u['p50_ms']} ms, p99 {u['p99_ms']} ms. Visibility: {v['visible']} of
{v['versions']} versions found by the probes ({v['first_probe']} by the first search after the `200`), delay p99 {v['p99_ms']} ms,
max {v['max_ms']} ms; {v['not_within']} not visible within {v['within_s']:g} s; {v['probe_errors']} failed probes. Final check:
{f['missing']} of {f['documents']} documents missing.

**Acceptance (issue 15: zero failed requests, every upserted document searchable within 2 s): {verdict}**
({r['failed_requests']} failed requests in all).
"""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--index", type=Path, default=Path("build/scifact"), help="index to copy and serve (never written)")
    p.add_argument("--queries", type=Path, default=Path("../shared/data/scifact/queries.jsonl"))
    p.add_argument("--qrels", type=Path, default=Path("../shared/data/scifact/qrels/test.tsv"), help="search only the queries judged here")
    p.add_argument("--corpus", type=Path, default=Path("../shared/data/scifact/corpus.jsonl"), help="passages for the upserted texts")
    p.add_argument("--mode", choices=["bm25", "dense", "hybrid"], default="hybrid")
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--seconds", type=float, default=30.0, help="length of each phase")
    p.add_argument("--batch", type=int, default=10, help="documents per upsert")
    p.add_argument("--updates", type=int, default=2, help="documents of each batch that replace earlier upserted ones")
    p.add_argument("--rate", type=float, default=1.0, help="upsert batches per second")
    p.add_argument("--visible-within", type=float, default=2.0, help="seconds after the 200 a document must be searchable")
    p.add_argument("--probe-timeout", type=float, default=10.0, help="seconds a probe keeps looking")
    p.add_argument("--warmup", type=int, default=64)
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--api-key", help="start the server with this key and send it (default: no key)")
    p.add_argument("--port", type=int, help="use a server already listening on 127.0.0.1:PORT (its index is written!)")
    p.add_argument("--serve-arg", action="append", default=[], help="extra `rag serve` argument (repeatable)")
    p.add_argument("--out", type=Path, help="write the results as JSON here")
    p.add_argument("--write", action="store_true", help="write the service-upserts section of docs/benchmarks.md")
    args = p.parse_args(argv)
    if min(args.clients, args.batch, args.seconds, args.rate) <= 0 or args.updates < 0:
        p.error("--clients, --batch, --seconds and --rate must be positive, --updates not negative")

    import httpx

    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    from indexes.errors import RagError
    from rag.corpus import read_corpus

    try:
        queries = load_query_texts(args.queries, 1000, args.qrels)
        passages = list(itertools.islice(read_corpus(args.corpus), 5000))
    except RagError as exc:
        raise SystemExit(str(exc)) from None
    if not passages:
        raise SystemExit(f"{args.corpus}: no documents to upsert")
    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    with tempfile.TemporaryDirectory(prefix="service-upserts-") as tmp:
        proc = None
        if args.port:
            port = args.port
            try:
                served = httpx.get(f"http://{HOST}:{port}/indexes", headers=headers, timeout=30).json()
                index = served["default"] or served["indexes"][0]["name"]
            except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError) as exc:
                raise SystemExit(f"--port {port}: no index list from GET /indexes ({type(exc).__name__}: {exc})") from None
        else:
            if not (args.index / "manifest.json").is_file():
                raise SystemExit(f"{args.index}: not an index (no manifest.json); build one with `rag index`")
            copy = shutil.copytree(args.index, Path(tmp) / "index")
            env = {"RAG_API_KEY": args.api_key} if args.api_key else {}
            proc, port = start_server(copy, args.workers, ["--writable", *args.serve_arg], env=env, log=Path(tmp) / "server.log")
            index = "bench"
        try:
            asyncio.run(run_cell(port, args.mode, 8, queries[::-1], args.k, args.warmup, 60, headers))
            baseline = asyncio.run(run_cell(port, args.mode, args.clients, queries, args.k, 10**9, args.seconds, headers))
            print(json.dumps({"baseline": baseline}), flush=True)
            load, log, missing = asyncio.run(write_phase(port, headers, index, queries, itertools.cycle(passages), args))
        finally:
            if proc is not None:
                stop_server(proc)
    result = {"index": str(args.index), "corpus": str(args.corpus), "mode": args.mode, "k": args.k, "clients": args.clients, "seconds": args.seconds,
              "batch": args.batch, "updates": args.updates, "rate": args.rate, "workers": args.workers, "cpus": os.cpu_count(),
              "load_avg_1m": round(os.getloadavg()[0], 2), **summarize(baseline, load, log, missing, args)}
    command = "python -m eval.benchmarks.service_upserts " + shlex.join(sys.argv[1:] if argv is None else argv)
    from eval.benchmarks.report import machine, write_section

    text = markdown(result, command, machine(), dt.date.today().isoformat())
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    if args.write:
        write_section("service-upserts", text)
    return 0 if result["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
