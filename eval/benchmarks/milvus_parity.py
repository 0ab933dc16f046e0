"""SciFact through ``--backend milvus`` (Milvus Lite) vs the local FAISS index built from the same vectors.

The Milvus index is built by the real ``rag index`` code path (:func:`rag.indexer.build_index`
with the Milvus backend) from the local index's own vectors, replayed instead of re-encoded, so
any difference in quality comes from the engine, not from the encoder. Prints a Markdown table
(nDCG@10 on the test queries per mode, build and query times) and writes it as JSON.

Usage:
    python -m eval.benchmarks.milvus_parity --data ../shared/data/scifact --faiss-index build/scifact-faiss \
        --out build/scifact-milvus --uri build/scifact-milvus.db [--json build/milvus_parity.json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np

from eval.benchmarks.report import machine


class ReplayEncoder:
    """The passage vectors of an existing index, returned in its row order (same corpus, same chunking)."""

    def __init__(self, index: Path) -> None:
        from indexes.commits import open_commit
        from indexes.segmented import CommitView

        from indexes.dense_store import PASSAGES_NAME, VECTORS_NAME, read_passage_map, read_vectors

        manifest, self._lease = open_commit(index)
        view = CommitView(index, manifest)
        if view.simple:  # one segment as built: its files
            self.vectors, self.owner = read_vectors(view.folders[0] / VECTORS_NAME), read_passage_map(view.folders[0] / PASSAGES_NAME)
        else:
            self.vectors, self.owner = view.vector_arrays()  # (R, d), (R,)
        view.close()
        self._spec, self.dim = manifest.dense.encoder, manifest.dense.encoder.dim

    def spec(self):
        return self._spec

    def encode_passage_windows(self, texts, overlap, progress=False):
        if int(self.owner[-1]) + 1 != len(texts):
            raise SystemExit(f"the corpus has {len(texts)} passages, the vectors {int(self.owner[-1]) + 1}")
        return self.vectors, self.owner


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--faiss-index", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--uri", required=True)
    ap.add_argument("--split", default="test")
    ap.add_argument("--json", type=Path, default=Path("build/milvus_parity.json"))
    ap.add_argument("--reuse", action="store_true", help="search an existing --out instead of building it again")
    args = ap.parse_args(argv)

    from eval.benchmarks.retrieval import quality
    from indexes.manifest import MilvusSpec, VectorBackendSpec
    from rag.index import open_index
    from rag.indexer import IndexOptions, build_index

    local = open_index(args.faiss_index, encoder_backend="torch")
    replay = ReplayEncoder(args.faiss_index)
    t = time.perf_counter()
    options = IndexOptions(progress=False, bm25=local.manifest.bm25.params, analyzer=local.manifest.bm25.analyzer,
                           chunking=local.manifest.corpus.chunking, backend=VectorBackendSpec(library="milvus"),
                           engine=MilvusSpec(uri=args.uri, collection="scifact"))
    if not args.reuse:
        shutil.rmtree(args.out, ignore_errors=True)
        build_index(args.data / "corpus.jsonl", args.out, options, encoder=replay)
    build_s = time.perf_counter() - t if not args.reuse else float("nan")
    remote = open_index(args.out, encoder=local.dense.encoder)  # the same query encoder object
    rows = {}
    for name, index in (("faiss", local), ("milvus", remote)):
        t = time.perf_counter()
        q = quality(index, args.data, args.split)
        rows[name] = {"ndcg@10": {m: q[m]["ndcg@10"] for m in q}, "eval_s": time.perf_counter() - t}
    # per-passage score parity on a sample of queries: dense and BM25 of every candidate row
    from rag.queries import load_queries

    queries = list(load_queries(args.data / "queries.jsonl").values())[:50]
    dmax = bmax = 0.0
    for q in queries:
        v = local.dense.encoder.encode_queries([q])[0]
        top = local.dense.rank_batch([q], 100)[0][0]
        dmax = max(dmax, float(np.abs(local.dense.score_rows(v, top) - remote.dense.score_rows(v, top)).max()))
        (_, s1), = local.bm25.rank_scoring([q], 1)
        (_, s2), = remote.bm25.rank_scoring([q], 1)
        top = local.bm25.rank_batch([q], 100)[0][0]
        if top.size:
            bmax = max(bmax, float(np.abs(s1(top) - s2(top)).max()))
    result = {"machine": machine(), "date": time.strftime("%Y-%m-%d"), "split": args.split, "milvus_build_s": build_s,
              "passages": len(local.store), "windows": int(replay.vectors.shape[0]), "rows": rows,
              "max_abs_score_diff": {"dense": dmax, "bm25": bmax}}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print("| backend | BM25 | dense | hybrid | eval time (s) |\n|---|---|---|---|---|")
    for name, r in rows.items():
        n = r["ndcg@10"]
        print(f"| {name} | {n['bm25']:.4f} | {n['dense']:.4f} | {n['hybrid']:.4f} | {r['eval_s']:.1f} |")
    print(f"max |score diff| over top-100 of 50 queries: dense {dmax:.2e}, bm25 {bmax:.2e}; "
          f"milvus build (insert {replay.vectors.shape[0]} windows + BM25 rows) {build_s:.1f}s")
    local.close()
    remote.close()


if __name__ == "__main__":
    main()
