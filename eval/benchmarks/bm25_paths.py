"""BM25 top-k paths against the full scan on SciFact: compiled MaxScore, numpy MaxScore.

The full scan (:meth:`rag.bm25.BM25Scorer.top_k_exhaustive`) adds each passage's term weights in
query order; the compiled kernels (:mod:`rag.bm25_kernels`, numba) keep that order and agree bit
for bit, while the numpy MaxScore (:mod:`rag.bm25_pruning`, the path without numba) adds them
largest bound first, so its scores may differ in the last bits. For every BM25 variant and every
SciFact query (analyzed; pruning forced on with ``prune_min_docs=0``) this counts identical
ranked lists and bit-identical scores per path, and the largest score difference of the numpy
path (absolute, and relative to the score). Writes the ``bm25-paths`` section of docs/benchmarks.md.

Usage:
    python -m eval.benchmarks.bm25_paths --data ../shared/data [-k 10] [--no-write]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import unittest.mock
from pathlib import Path

import numpy as np

from eval.benchmarks.report import machine, write_section
from indexes.bm25_store import BM25Data
from indexes.manifest import AnalyzerSpec, BM25Spec
from rag.analyzer import Analyzer
from rag.bm25 import BM25Scorer
from rag.compat import numba as numba_compat

VARIANTS = ("lucene", "robertson", "atire", "bm25l", "bm25+", "okapi")


def compare(scorer: BM25Scorer, queries: list[np.ndarray], k: int) -> dict:
    """Per path: queries with the full scan's ranked list, and with its exact scores; numpy's largest differences."""
    out = {"queries": 0, "compiled_lists": 0, "compiled_bits": 0, "numpy_lists": 0, "numpy_bits": 0,
           "numpy_max_abs": 0.0, "numpy_max_rel": 0.0}
    for ids in queries:
        ref_rows, ref = scorer.top_k_exhaustive(ids, k)
        rows, scores = scorer.top_k(ids, k)  # compiled when numba is installed
        with unittest.mock.patch.object(numba_compat, "bm25_kernels", lambda: None):
            np_rows, np_scores = scorer.top_k(ids, k)
        out["queries"] += 1
        out["compiled_lists"] += rows.tolist() == ref_rows.tolist()
        out["compiled_bits"] += scores.tolist() == ref.tolist()
        out["numpy_lists"] += np_rows.tolist() == ref_rows.tolist()
        out["numpy_bits"] += np_scores.tolist() == ref.tolist()
        if np_rows.tolist() == ref_rows.tolist() and ref.size:
            diff = np.abs(np_scores - ref)
            out["numpy_max_abs"] = max(out["numpy_max_abs"], float(diff.max()))
            out["numpy_max_rel"] = max(out["numpy_max_rel"], float((diff / np.abs(ref)).max()))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=Path("../shared/data"))
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--no-write", action="store_true", help="Print only; leave docs/benchmarks.md alone.")
    a = p.parse_args()
    if numba_compat.bm25_kernels() is None:
        raise SystemExit("numba is not installed (the [fast] extra): there is no compiled path to compare")
    analyze = Analyzer(AnalyzerSpec())
    rows = [json.loads(line) for line in (a.data / "scifact" / "corpus.jsonl").open(encoding="utf-8")]
    data = BM25Data.from_token_lists([analyze(f"{r.get('title', '')} {r['text']}") for r in rows])
    texts = [json.loads(line)["text"] for line in (a.data / "scifact" / "queries.jsonl").open(encoding="utf-8")]
    lines = ["| variant | queries | compiled: same list | compiled: same bits | numpy: same list | numpy: same bits | "
             "numpy: max abs diff | numpy: max rel diff |", "|---|---|---|---|---|---|---|---|"]
    for variant in VARIANTS:
        scorer = BM25Scorer(data, BM25Spec(variant=variant), prune_min_docs=0)
        queries = [ids for ids in (scorer.lookup(analyze(t)) for t in texts) if ids.size]
        r = compare(scorer, queries, a.k)
        print(variant, r, flush=True)
        lines.append(f"| {variant} | {r['queries']} | {r['compiled_lists']} | {r['compiled_bits']} | {r['numpy_lists']} | "
                     f"{r['numpy_bits']} | {r['numpy_max_abs']:.1e} | {r['numpy_max_rel']:.1e} |")
    md = "\n".join([f"## BM25 top-{a.k} paths against the full scan (SciFact)", "",
                    f"{dt.date.today()}, {machine()}. Command: `python -m eval.benchmarks.bm25_paths --data "
                    "../shared/data`. Every SciFact query (analyzed; pruning forced on), per BM25 variant: queries "
                    "whose ranked list / whose scores (bit for bit) equal the numpy full scan's, and the numpy "
                    "MaxScore's largest score difference where its list is the same.", "", *lines])
    print(md)
    if not a.no_write:
        write_section("bm25-paths", md)


if __name__ == "__main__":
    main()
