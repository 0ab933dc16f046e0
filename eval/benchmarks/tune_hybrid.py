"""Choose the hybrid fusion default on SciFact *train* queries (never the test split).

For every train query the union of the BM25 and dense top-``depth`` candidates is scored
exactly by both retrievers once; each fusion setting (RRF, convex combination with min-max or
z-score normalisation over a grid of α) is then just arithmetic on those arrays. Writes the
``hybrid-tuning`` section of docs/benchmarks.md.

Usage:
    python -m eval.benchmarks.tune_hybrid --data ../shared/data/scifact --index build/scifact
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from eval.benchmarks.report import write_section
from eval.retrieval import evaluate
from rag.fusion import convex, ranks_of, rrf
from rag.index import open_index
from rag.queries import load_qrels, load_queries

ALPHAS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def candidates(index, queries: dict[str, str], depth: int) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """query id → (candidate rows, exact BM25 scores, exact dense scores), as the hybrid retriever sees them."""
    ids = list(queries)
    hybrid = index.retriever("hybrid", depth=depth)
    return dict(zip(ids, hybrid.candidates([queries[q] for q in ids], depth)))


def run_of(cands, doc_ids: list[str], fuse) -> dict[str, dict[str, float]]:
    run = {}
    for qid, (cand, sparse, dense) in cands.items():
        fused = fuse(sparse, dense)
        docs: dict[str, float] = {}
        for j in np.lexsort((cand, -fused))[:100]:
            docs.setdefault(doc_ids[cand[j]], float(fused[j]))
        run[qid] = docs
    return run


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data/scifact"))
    ap.add_argument("--index", type=Path, default=Path("build/scifact"))
    ap.add_argument("--depth", type=int, default=100)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    index = open_index(args.index)
    qrels = load_qrels(args.data / "qrels" / "train.tsv")
    queries = load_queries(args.data / "queries.jsonl")
    cands = candidates(index, {q: queries[q] for q in qrels}, args.depth)
    doc_ids = index.store.doc_ids()
    results: dict[str, float] = {}
    results["rrf k=60"] = evaluate(run_of(cands, doc_ids, lambda s, d: rrf([ranks_of(s), ranks_of(d)], 60)), qrels, ("ndcg@10",))[0]["ndcg@10"]
    for norm in ("minmax", "zscore"):
        for a in ALPHAS:
            fuse = lambda s, d, a=a, norm=norm: convex(s, d, a, norm)  # noqa: E731
            results[f"convex {norm} α={a}"] = evaluate(run_of(cands, doc_ids, fuse), qrels, ("ndcg@10",))[0]["ndcg@10"]
    for name, v in results.items():
        print(f"{name:<24} {v:.4f}")
    best = max(results, key=results.get)
    print("best:", best)
    if not args.no_write:
        table = "\n".join(f"| {n} | {v:.4f} |" for n, v in results.items())
        write_section("hybrid-tuning", f"""## Hybrid fusion, tuned on SciFact train queries ({len(qrels)} queries)

Command: `python -m eval.benchmarks.tune_hybrid --data ../shared/data/scifact --index build/scifact`.
Candidates: union of BM25 and dense top-{args.depth}, each scored exactly by both retrievers.
The test split is never used for this choice.

| fusion | train nDCG@10 |
|---|---|
{table}

Best on train: **{best}** — the default in `rag.retrievers.HybridConfig`.
""")


if __name__ == "__main__":
    main()
