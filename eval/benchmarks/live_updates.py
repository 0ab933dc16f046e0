"""Live indexes on SciFact: upsert cost against a full rebuild, search over unmerged segments
against the compacted index, and the cost of verifying checksums when an index is opened.

1. ``rag index`` of SciFact (BM25 + dense flat), timed (the encoder loaded beforehand).
2. Upsert of 50 documents (their text changed) with the same loaded encoder, timed.
3. 19 more upserts of ``--batch`` documents each (20 segments in all), then BM25 and dense
   queries/s over the test queries (encoded once, so dense q/s is the vector search alone),
   and opening time; then ``compact`` and the same figures.

Usage:
    nice python -m eval.benchmarks.live_updates --scifact ../shared/data/scifact
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
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
    ap.add_argument("--write", action="store_true", help="write the section of docs/benchmarks.md")
    args = ap.parse_args()
    corpus = args.scifact / "corpus.jsonl"
    docs = [json.loads(line) for line in corpus.open()]
    queries = list(load_queries(args.scifact / "queries.jsonl").values())
    encoder = Encoder(EncoderConfig(device="cpu"))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        idx = tmp / "idx"
        t = time.perf_counter()
        build_index(corpus, idx, IndexOptions(progress=False), encoder=encoder)
        full = time.perf_counter() - t
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
    result = {"full_s": full, "upsert50_s": upsert, "ratio": upsert / full, "compact_s": compact,
              "segmented": segmented, "compacted": compacted}
    print(json.dumps(result, indent=2))
    if args.write:
        s, c = segmented, compacted
        write_section("live", f"""## Live indexes: upserts, segments, checksums

Measured {dt.date.today()} on {machine()} with
`nice python -m eval.benchmarks.live_updates --scifact ../shared/data/scifact --write`
(SciFact, {len(docs)} documents, BM25 + dense flat, all-MiniLM-L6-v2 loaded once).

| step | seconds |
|---|---|
| full `rag index` | {full:.1f} |
| upsert of 50 documents (`rag add`) | {upsert:.1f} ({100 * upsert / full:.1f}% of the rebuild) |
| `rag compact` of {s['segments']} segments | {compact:.1f} |

| index | segments | open (s) | of which checksums (s) | BM25 q/s | dense q/s (search only) |
|---|---|---|---|---|---|
| after 20 upserts | {s['segments']} | {s['open_s']:.2f} | {s['verify_s']:.2f} | {s['bm25_qps']:.0f} | {s['dense_qps']:.0f} |
| compacted | {c['segments']} | {c['open_s']:.2f} | {c['verify_s']:.2f} | {c['bm25_qps']:.0f} | {c['dense_qps']:.0f} |

Segments are merged in memory when a commit is opened (live passages in document-id order), so
search over unmerged segments runs the same code as over a compacted index; what segments cost is
opening time.
""")


if __name__ == "__main__":
    main()
