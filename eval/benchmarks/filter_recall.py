"""Recall cost of metadata filters on approximate dense search (HNSW, IVF-PQ) against exact flat, on SciFact.

Every SciFact document gets a synthetic field ``bucket`` = sha256(doc id) mod 100, a uniform label
independent of the text, so ``{"bucket": {"$lt": s}}`` keeps about s% of the passages. For each
selectivity the top-10 passages of the filtered search on each structure are compared with the
filtered *flat* search (exact: FAISS skips the vectors outside the filter, tested equal to
filtering the full ranking): recall@10 = |approx ∩ exact| / |exact|, averaged over all SciFact
queries, with a bootstrap 90% interval, and queries/s of the vector search alone (queries
encoded once). The filter reaches FAISS as an ``IDSelectorBitmap`` in the search parameters
(:meth:`indexes.dense_store.DenseStore.search`), measured three ways on each approximate
structure: the selector alone; the selector with the exact re-search of queries that got fewer
than k passages; and the default, which also searches exactly whenever the filter allows at most
``EXACT_FILTER_MAX_VECTORS`` vectors.

Usage:
    nice -n 10 python -m eval.benchmarks.filter_recall --index build/scifact --queries ../shared/data/scifact/queries.jsonl --write
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np

from eval.benchmarks.report import machine, write_section
from indexes.dense_store import EXACT_FILTER_MAX_VECTORS, DenseStore
from indexes.filters import MetadataColumns, parse_filter
from indexes.manifest import VectorBackendSpec
from rag.index import open_index
from rag.queries import load_queries

SELECTIVITY = (100, 50, 10, 1)  # percent of passages the filter keeps


def structures(n_vectors: int) -> dict[str, VectorBackendSpec]:
    """Flat, HNSW and IVF-PQ at the project's defaults (IVF lists: at most 64, 39 training points each)."""
    nlist = max(1, min(64, n_vectors // 39))
    return {"flat": VectorBackendSpec(kind="flat"), "hnsw (M=32, efSearch=128)": VectorBackendSpec(kind="hnsw"),
            f"ivfpq (nlist={nlist}, nprobe=16, m=96)": VectorBackendSpec(kind="ivfpq", ivf_nlist=nlist)}


def bucket(doc_id: str) -> int:
    return int(hashlib.sha256(doc_id.encode()).hexdigest(), 16) % 100


def recall(approx: np.ndarray, exact: np.ndarray) -> np.ndarray:
    """Per-query |approx ∩ exact| / |exact| over rows (B, k); ``-1`` marks no result."""
    out = []
    for a, e in zip(approx, exact):
        e = set(e[e >= 0].tolist())
        out.append(len(e & set(a[a >= 0].tolist())) / len(e) if e else 1.0)
    return np.asarray(out)


def interval(x: np.ndarray, rng: np.random.Generator, n: int = 2000) -> tuple[float, float]:
    means = x[rng.integers(0, x.size, size=(n, x.size))].mean(1)
    return float(np.quantile(means, 0.05)), float(np.quantile(means, 0.95))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", type=Path, required=True, help="a SciFact index with a dense part")
    ap.add_argument("--queries", type=Path, required=True, help="queries JSONL/TSV (e.g. SciFact's queries.jsonl)")
    ap.add_argument("--max-queries", type=int, default=None, help="the first N queries only")
    ap.add_argument("--encoder-backend", default="torch", choices=["torch", "onnx", "onnx-int8"])
    ap.add_argument("-k", type=int, default=10)
    ap.add_argument("--write", action="store_true", help="write the section of docs/benchmarks.md")
    args = ap.parse_args()
    start, load = dt.datetime.now(dt.timezone.utc), os.getloadavg()[0]
    index = open_index(args.index, encoder_backend=args.encoder_backend)
    flat = index.dense.dense
    assert isinstance(flat, DenseStore)
    columns = MetadataColumns([{"bucket": bucket(d)} for d in index.store.doc_ids()])
    queries = list(load_queries(args.queries).values())[: args.max_queries]
    Q = index.dense.encoder.encode_queries(queries)  # (B, d)
    stores = {}
    for name, spec in structures(len(flat.vectors)).items():
        t = time.perf_counter()
        stores[name] = DenseStore.from_arrays(np.asarray(flat.vectors), flat.passage_of_row, spec)
        print(f"built {name} in {time.perf_counter() - t:.1f}s", flush=True)
    rng = np.random.default_rng(0)
    rows = []
    variants = {"selector only": (0, False), "selector + exact re-search of short results": (0, True),
                f"default (exact at <= {EXACT_FILTER_MAX_VECTORS:,} allowed vectors)": (EXACT_FILTER_MAX_VECTORS, True)}
    for s in SELECTIVITY:
        where = columns.resolve(parse_filter({"bucket": {"$lt": s}})) if s < 100 else None
        share = 1.0 if where is None else where.count / len(columns.metadata)
        results = {}
        for name, store in stores.items():
            for variant, (limit, fallback) in variants.items() if name != "flat" and where is not None else [("", (0, False))]:
                store.exact_filter_max_vectors, store.filter_fallback = limit, fallback
                t = time.perf_counter()
                _, found = store.search(Q, args.k, where)  # (B, k)
                results[f"{name}, {variant}" if variant else name] = (found, len(queries) / (time.perf_counter() - t))
        exact = results["flat"][0]
        for name, (found, qps) in results.items():
            r = recall(found, exact)
            lo, hi = interval(r, rng)
            rows.append({"filter_keeps_pct": s, "share": share, "structure": name, "recall": float(r.mean()), "lo": lo,
                         "hi": hi, "qps": qps, "short": int(np.count_nonzero((found < 0).any(1) & ~(exact < 0).any(1)))})
            print(json.dumps(rows[-1]), flush=True)
    load = max(load, os.getloadavg()[0])
    if args.write:
        table = "\n".join(f"| {r['filter_keeps_pct']}% ({100 * r['share']:.1f}%) | {r['structure']} | {r['recall']:.4f} "
                          f"[{r['lo']:.4f}, {r['hi']:.4f}] | {r['short']} | {r['qps']:.0f} |" for r in rows)
        write_section("filter-recall", f"""## Metadata filters: recall of filtered HNSW / IVF-PQ against exact flat

Measured {start:%Y-%m-%d %H:%M} UTC on {machine()} (shared: load average up to {load:.0f} on 2 cores,
other sessions' jobs; queries/s are indicative only) with
`nice -n 10 python -m eval.benchmarks.filter_recall --index {args.index} --queries {args.queries} --encoder-backend {args.encoder_backend}{'' if args.max_queries is None else f' --max-queries {args.max_queries}'} --write`
({len(columns.metadata)} passages, {len(flat.vectors)} window vectors; {len(queries)} queries; top-{args.k}).
A synthetic field `bucket` = sha256(doc id) mod 100 filters `{{"bucket": {{"$lt": s}}}}`; the filter goes
to FAISS as an `IDSelectorBitmap` (no oversampling), alone, with an exact re-search of the queries that got
fewer than {args.k} passages, and by default also exact whenever at most {EXACT_FILTER_MAX_VECTORS:,} vectors
are allowed (on an index this small: always). Recall@{args.k} is against the filtered flat search
(exact), with a bootstrap 90% interval over queries; "short" counts queries that got fewer than {args.k}
passages although flat found {args.k}.

| filter keeps (actual) | structure | recall@{args.k} [90% CI] | short | q/s |
|---|---|---|---|---|
{table}
""")


if __name__ == "__main__":
    main()
