"""Hit rate of the bounded passage KV cache (``rag cache build --budget-bytes --queries``) on SciFact.

The query log is SciFact's *train* queries; the cache is evaluated on its *test* queries (no
overlap), so the hit rate is what a cache built from yesterday's traffic gives today's. For each
budget (a fraction of the bytes a cache of every passage takes) the passages are chosen exactly as
``rag cache build`` chooses them (:func:`rag.generation.cache_policy.select_within_budget`; sizes
are SmolLM2 block tokens × bytes per token, counted with the tokenizer, no states encoded), and
the hit rate is measured on the top-``k`` retrieved passages of every test query:

* passage hit rate: share of (query, passage) pairs whose passage is cached;
* query hit rate: share of queries whose every passage is cached (no passage prefill at all).

The TTFT it buys is derived, not measured here: ``TTFT(h) ≈ TTFT_cached + (1 − h)·(TTFT_full −
TTFT_cached)`` with ``h`` the passage hit rate and the two TTFTs measured by
:mod:`eval.benchmarks.smollm2_ttft` (a missing block is prefilled at question time, at about the
full path's per-token cost).

Usage:
    rag index ../shared/data/scifact/corpus.jsonl --out build/scifact-bm25 --no-dense
    python -m eval.benchmarks.cache_budget --data ../shared/data/scifact --index build/scifact-bm25 --mode bm25 \\
        --out build/cache-budget.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
from pathlib import Path

from rag.batch import search_run
from rag.generation.cache_policy import hit_rate, retrieval_counts, select_within_budget
from rag.index import open_index
from rag.queries import load_qrels, load_queries

FRACTIONS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
# smollm2_ttft (docs/benchmarks.md, 2026-11-30, k=5, 956 prompt tokens): full prefill vs cached KV, ms
TTFT_FULL_MS, TTFT_CACHED_MS = 11159.0, 735.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="SciFact in BEIR layout")
    ap.add_argument("--index", type=Path, required=True)
    ap.add_argument("--mode", default="bm25")
    ap.add_argument("-k", type=int, default=5, help="passages per question (rag ask's default)")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    from rag.generation.generator import Generator, GeneratorConfig
    from rag.generation.passage_cache import CacheConfig, store_spec
    from rag.generation.prompt import PromptBuilder

    queries = load_queries(args.data / "queries.jsonl")
    split = {name: {q: queries[q] for q in load_qrels(args.data / "qrels" / f"{name}.tsv") if q in queries}
             for name in ("train", "test")}
    index = open_index(args.index)
    runs = {name: search_run(index, qs, args.mode, k=args.k, per_doc=False) for name, qs in split.items()}
    counts = retrieval_counts(runs["train"])
    gen = Generator.load(GeneratorConfig("smollm2"))
    builder = PromptBuilder(gen, CacheConfig().template)
    per_token = store_spec(gen, CacheConfig()).bytes_per_token
    order, sizes = {}, {}
    for row, p in enumerate(index.store.iter_all()):
        order[p.id] = row
        sizes[p.id] = len(builder.block_ids(p.title, p.text)) * per_token
    total = sum(sizes.values())
    rows = []
    for f in FRACTIONS:
        sel = select_within_budget(counts, sizes, int(f * total), order)
        cached = set(sel.ids)
        test, train = hit_rate(cached, runs["test"]), hit_rate(cached, runs["train"])
        rows.append({"budget_fraction": f, "budget_bytes": int(f * total), "cached_passages": len(cached),
                     "cached_bytes": sel.bytes, "test_passage_hit": test.passages, "test_query_hit": test.queries,
                     "train_passage_hit": train.passages,
                     "ttft_ms_estimate": TTFT_CACHED_MS + (1 - test.passages) * (TTFT_FULL_MS - TTFT_CACHED_MS)})
    result = {"date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "mode": args.mode, "k": args.k,
              "passages": len(sizes), "full_cache_bytes": total, "bytes_per_token": per_token,
              "log_queries": len(split["train"]), "test_queries": len(split["test"]),
              "log_distinct_passages": len(counts), "load_avg": os.getloadavg(), "rows": rows}
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
