"""Live indexes on SciFact: upsert cost against a full rebuild, search over unmerged segments
against the compacted index, and the cost of verifying checksums when an index is opened.

1. ``rag index`` of SciFact (BM25 + dense flat), timed (the encoder loaded beforehand).
2. Upsert of 50 documents (their text changed) with the same loaded encoder, timed.
3. 19 more upserts of ``--batch`` documents each (20 segments in all), then BM25 and dense
   queries/s over all SciFact queries (encoded once, so dense q/s is the vector search alone),
   and opening time; then ``compact`` and the same figures, plus BM25 through the path of
   ``rag search --mode bm25 --queries Q --run R`` (:func:`rag.batch.search_run`: analysis, top-10
   documents, ids) and the wall time of that command in a fresh process.

Usage:
    nice python -m eval.benchmarks.live_updates --scifact ../shared/data/scifact [--encoder-backend onnx-int8]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from eval.benchmarks.report import machine, write_section
from indexes.commits import open_commit
from indexes.segmented import CommitView
from rag.encoder import Encoder, EncoderConfig
from rag.index import open_index
from rag.indexer import IndexOptions, build_index
from rag.live import add_documents, compact_index
from rag.queries import load_queries


def _batch(docs: list[dict], start: int, n: int, path: Path, tag: str) -> Path:
    with path.open("w") as fh:
        for d in docs[start : start + n]:
            fh.write(json.dumps({**d, "text": d["text"] + f" ({tag})"}) + "\n")
    return path


def _cli_bm25(index_dir: Path, queries_file: Path, queries: dict[str, str], tmp: Path) -> dict[str, float]:
    """BM25 queries/s of the CLI's batch search (in process), and the command's wall time."""
    import os
    import subprocess
    import sys

    from rag.batch import search_run

    index = open_index(index_dir)
    index.bm25  # weights derived at load, as the command does before searching
    t = time.perf_counter()
    search_run(index, queries, "bm25", k=10, per_doc=True)
    qps = len(queries) / (time.perf_counter() - t)
    index.close()
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "rag.cli", "search", "--index", str(index_dir), "--mode", "bm25", "-k", "10",
                    "--queries", str(queries_file), "--run", str(tmp / "bm25.trec")], check=True, env=os.environ.copy(),
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return {"cli_qps": qps, "cli_wall_s": time.perf_counter() - t}


def _speed(index_dir: Path, encoder: Encoder, queries: list[str]) -> dict[str, float]:
    t = time.perf_counter()
    index = open_index(index_dir, encoder=encoder)
    bm25, dense = index.bm25, index.dense
    opened = time.perf_counter() - t
    vectors = encoder.encode_queries(queries)
    t = time.perf_counter()
    bm25.rank_batch(queries, 10)
    bm25_qps = len(queries) / (time.perf_counter() - t)
    t = time.perf_counter()
    dense.rank_vectors(vectors, 10)
    dense_qps = len(queries) / (time.perf_counter() - t)
    manifest, lease = open_commit(index_dir)
    t = time.perf_counter()
    CommitView(index_dir, manifest, verify=True).close()
    verified = time.perf_counter() - t
    t = time.perf_counter()
    CommitView(index_dir, manifest, verify=False).close()
    unverified = time.perf_counter() - t
    lease.close()
    index.close()
    return {"open_s": opened, "bm25_qps": bm25_qps, "dense_qps": dense_qps, "verify_s": verified - unverified,
            "segments": len(manifest.segments)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scifact", type=Path, required=True)
    ap.add_argument("--batch", type=int, default=10, help="documents per upsert of step 3")
    ap.add_argument("--encoder-backend", default="torch", choices=["torch", "onnx", "onnx-int8"],
                    help="passage and query encoding (onnx-int8 makes the full rebuild fit a shared machine)")
    ap.add_argument("--keep", type=Path, help="copy the freshly built index here (for eval.benchmarks.filter_recall)")
    ap.add_argument("--write", action="store_true", help="write the section of docs/benchmarks.md")
    args = ap.parse_args()
    start = dt.datetime.now(dt.timezone.utc)
    load = os.getloadavg()[0]
    corpus = args.scifact / "corpus.jsonl"
    docs = [json.loads(line) for line in corpus.open()]
    all_queries = load_queries(args.scifact / "queries.jsonl")
    queries = list(all_queries.values())
    encoder = Encoder(EncoderConfig(device="cpu", backend=args.encoder_backend))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        idx = tmp / "idx"
        t = time.perf_counter()
        build_index(corpus, idx, IndexOptions(progress=False), encoder=encoder)
        full = time.perf_counter() - t
        if args.keep is not None:
            shutil.rmtree(args.keep, ignore_errors=True)
            shutil.copytree(idx, args.keep)
        t = time.perf_counter()
        add_documents(idx, _batch(docs, 0, 50, tmp / "b0.jsonl", "upsert"), encoder=encoder, progress=False)
        upsert = time.perf_counter() - t
        for i in range(1, 20):
            add_documents(idx, _batch(docs, 50 + i * args.batch, args.batch, tmp / f"b{i}.jsonl", f"u{i}"), encoder=encoder,
                          progress=False)
        segmented = _speed(idx, encoder, queries)
        t = time.perf_counter()
        compact_index(idx)
        compact = time.perf_counter() - t
        compacted = _speed(idx, encoder, queries)
        cli = _cli_bm25(idx, args.scifact / "queries.jsonl", all_queries, tmp)
    load = max(load, os.getloadavg()[0])
    result = {"full_s": full, "upsert50_s": upsert, "ratio": upsert / full, "compact_s": compact,
              "segmented": segmented, "compacted": compacted, **cli, "load_avg_max_seen": load,
              "encoder_backend": args.encoder_backend}
    print(json.dumps(result, indent=2))
    if args.write:
        s, c = segmented, compacted
        backend = "" if args.encoder_backend == "torch" else f" --encoder-backend {args.encoder_backend}"
        write_section("live", f"""## Live indexes: upserts, segments, checksums

Measured {start:%Y-%m-%d %H:%M} UTC on {machine()} (shared: load average up to {load:.0f} on
2 cores during the run, other sessions' jobs) with
`nice -n 10 python -m eval.benchmarks.live_updates --scifact ../shared/data/scifact{backend} --write`
(SciFact, {len(docs)} documents, BM25 + dense flat, all-MiniLM-L6-v2 loaded once, passages and
queries encoded with the {args.encoder_backend} backend).

| step | seconds |
|---|---|
| full `rag index` | {full:.1f} |
| upsert of 50 documents (`rag add`) | {upsert:.1f} ({100 * upsert / full:.1f}% of the rebuild) |
| `rag compact` of {s['segments']} segments | {compact:.1f} |

| index | segments | open (s) | of which checksums (s) | BM25 q/s | dense q/s (search only) |
|---|---|---|---|---|---|
| after 20 upserts | {s['segments']} | {s['open_s']:.2f} | {s['verify_s']:.2f} | {s['bm25_qps']:.0f} | {s['dense_qps']:.0f} |
| compacted | {c['segments']} | {c['open_s']:.2f} | {c['verify_s']:.2f} | {c['bm25_qps']:.0f} | {c['dense_qps']:.0f} |

Gates: upsert of 50 ≤ 3% of the rebuild: {100 * upsert / full:.1f}% ({'✓' if upsert / full <= 0.03 else '✗'});
search over {s['segments']} segments ≥ 0.8× the compacted index: BM25 {s['bm25_qps'] / c['bm25_qps']:.2f}×, dense
{s['dense_qps'] / c['dense_qps']:.2f}× ({'✓' if min(s['bm25_qps'] / c['bm25_qps'], s['dense_qps'] / c['dense_qps']) >= 0.8 else '✗'});
BM25 after compaction through the CLI's batch path (`rag search --mode bm25 --queries --run`: analysis,
top-10 documents, ids; {len(all_queries)} queries): {cli['cli_qps']:.0f} q/s ({'✓' if cli['cli_qps'] >= 2000 else '✗'} ≥ 2,000;
the whole command, start-up and run file included, took {cli['cli_wall_s']:.1f} s).

Segments are merged in memory when a commit is opened (live passages in document-id order), so
search over unmerged segments runs the same code as over a compacted index; what segments cost is
opening time.
""")


if __name__ == "__main__":
    main()
