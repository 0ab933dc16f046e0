"""HyDE with SmolLM2-135M-Instruct on BEIR SciFact test: nDCG@10 with and without hypothetical documents.

For each test query the generator writes ``max(N)`` = 8 hypothetical documents once, as one batch
(:meth:`rag.generation.generator.Generator.sample_texts`; HyDE's prompt, temperature 0.7, seed
``s + i`` for document ``i``; at most ``--max-new-tokens`` tokens each,
fewer than the paper's 512 to fit a CPU); HyDE with ``N`` uses the first ``N`` of them
(:func:`rag.hyde.hyde_vector`: the mean of the query's and the documents' embeddings). *Dense* searches
the index's vectors with that vector; *hybrid* fuses BM25 with it exactly as ``--mode hybrid`` fuses
BM25 with the query vector (the same candidates, exact scores and fusion; only the dense vector
changes). Documents are written to ``docs.jsonl`` as they are produced, so a run resumes.
Added latency per query = median time to write ``N`` documents in one batched call (timed
separately on the first ``--timing-queries`` queries) + encoding them.

Run (``--queries`` takes the first queries)::

    rag index ../shared/data/scifact/corpus.jsonl --out build/scifact
    nice -n 5 python -m eval.benchmarks.hyde_scifact --index build/scifact --generator smollm2 --out build/hyde-scifact
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

SCIFACT = Path("/work/shared/data/scifact")
NS = (1, 4, 8)


def write_documents(queries: dict[str, str], generator_name: str, path: Path, max_new_tokens: int, seed: int) -> None:
    """Append 8 hypothetical documents (and the seconds the batch took) per query not yet in ``path``."""
    from eval.benchmarks.smollm2_squad import load_generator
    from rag.generation.sampling import SamplingConfig
    from rag.hyde import HydeConfig

    done = {json.loads(line)["qid"] for line in path.open(encoding="utf-8")} if path.exists() else set()
    todo = [q for q in queries if q not in done]
    if not todo:
        return
    gen, hyde = load_generator(generator_name), HydeConfig()
    cfg = SamplingConfig(max_new_tokens=max_new_tokens, temperature=hyde.temperature, seed=seed)
    with path.open("a", encoding="utf-8") as fh:
        for i, qid in enumerate(todo):
            t = time.perf_counter()
            docs = gen.sample_texts(hyde.prompt.format(question=queries[qid]), max(NS), cfg)  # one batch of 8
            secs = time.perf_counter() - t
            fh.write(json.dumps({"qid": qid, "docs": docs, "seconds": secs}, ensure_ascii=False) + "\n")
            fh.flush()
            print(f"[{i + 1}/{len(todo)}] {qid} {secs:.1f}s", flush=True)


def time_generation(queries: dict[str, str], generator_name: str, max_new_tokens: int, n_queries: int) -> dict:
    """Median seconds to write N ∈ NS documents for one query (one batched call each), first ``n_queries``."""
    from eval.benchmarks.smollm2_squad import load_generator
    from rag.generation.sampling import SamplingConfig
    from rag.hyde import HydeConfig

    gen, hyde = load_generator(generator_name), HydeConfig()
    cfg = SamplingConfig(max_new_tokens=max_new_tokens, temperature=hyde.temperature, seed=0)
    out: dict[int, list[float]] = {n: [] for n in NS}
    for q in list(queries.values())[:n_queries]:
        for n in NS:
            t = time.perf_counter()
            gen.sample_texts(hyde.prompt.format(question=q), n, cfg)
            out[n].append(time.perf_counter() - t)
    return {n: float(np.median(v)) for n, v in out.items()}


def _run_of(index, rows: np.ndarray, scores: np.ndarray, k: int = 100) -> dict[str, float]:
    out: dict[str, float] = {}
    for p, s in zip(index.bm25.store.get([int(r) for r in rows]), scores):
        out[p.doc_id] = max(out.get(p.doc_id, -np.inf), float(s))  # max-passage per document
    return dict(sorted(out.items(), key=lambda x: -x[1])[:k])


def evaluate_all(index_path: Path, queries: dict[str, str], docs_path: Path, qrels, gen_seconds: dict) -> dict:
    """nDCG@10 (dense, hybrid) for no HyDE and N ∈ NS, and the added latency per query."""
    from eval.benchmarks.smollm2_squad import paired_ci
    from eval.retrieval import evaluate
    from rag.hyde import hyde_vector
    from rag.index import open_index

    index = open_index(index_path)
    dense, hybrid = index.dense, index.retriever("hybrid")
    depth = max(100, hybrid.config.depth)
    rows = {r["qid"]: r for r in map(json.loads, docs_path.open(encoding="utf-8"))}
    qids = [q for q in queries if q in rows]
    runs: dict[str, dict[str, dict[str, float]]] = {}
    latency: dict[int, list[float]] = {n: [] for n in NS}
    for qid in qids:
        q = queries[qid]
        variants = {"none": dense.encoder.encode_queries([q])[0]}
        for n in NS:
            t = time.perf_counter()
            variants[f"N={n}"] = hyde_vector(q, rows[qid]["docs"][:n], dense.encoder)  # (d,)
            latency[n].append(gen_seconds[n] + time.perf_counter() - t)
        terms = hybrid.bm25.terms(q)
        for name, v in variants.items():
            d_rows, d_scores = dense.rank_vectors(v[None, :], depth)[0]
            runs.setdefault(f"dense {name}", {})[qid] = _run_of(index, d_rows, d_scores)
            cand = np.unique(np.concatenate([hybrid.bm25.scorer.top_k(terms, depth)[0], d_rows]))  # (C,)
            fused = hybrid.fuse(hybrid.bm25.scorer.scores(terms)[cand], dense.score_rows(v, cand))  # (C,)
            order = np.lexsort((cand, -fused))[:depth]
            runs.setdefault(f"hybrid {name}", {})[qid] = _run_of(index, cand[order], fused[order])
    sub = {q: qrels[q] for q in qids}
    per_query = {name: evaluate(run, sub)[1] for name, run in runs.items()}
    per = {name: np.array([pq[q]["ndcg@10"] for q in qids]) for name, pq in per_query.items()}  # (Q,)
    ndcg = {name: float(v.mean()) for name, v in per.items()}
    paired = {name: list(paired_ci(v - per[f"{name.split(' ', 1)[0]} none"]))
              for name, v in per.items() if not name.endswith(" none")}
    return {"queries": len(qids), "ndcg@10": ndcg, "paired_delta_90ci": paired,
            "added_latency_s": {f"N={n}": float(np.median(v)) if v else None for n, v in latency.items()}}


def markdown(r: dict, args, machine: str, date: str) -> str:
    lines = ["## HyDE with SmolLM2-135M-Instruct on SciFact test", "",
             f"Machine: {machine} (2-core CPU VM, no GPU). Date: {date}. Queries: {r['queries']} of the 300 test "
             f"queries (the first ones in qrels order). Hypothetical documents: temperature 0.7, ≤ {args.max_new_tokens} "
             "new tokens (the paper: 512), HyDE's prompt, written as one batch per query; N = 1, 4, 8 use the first N of "
             "the same 8 documents. Index: `rag index ... --encoder-backend onnx-int8` (passage vectors; queries and "
             "hypothetical documents encoded by the index's encoder). Latency: median over the first "
             f"{args.timing_queries} queries, one thread, on the shared machine.", "",
             "```bash", f"nice -n 5 python -m eval.benchmarks.hyde_scifact --index build/scifact --generator smollm2 "
             f"--queries {args.queries} --max-new-tokens {args.max_new_tokens} --timing-queries {args.timing_queries} "
             f"--threads {args.threads} --out {args.out}", "```", "",
             "| mode | no HyDE | N = 1 | N = 4 | N = 8 |", "|---|---|---|---|---|"]
    for mode in ("dense", "hybrid"):
        lines.append(f"| {mode} | " + " | ".join(f"{r['ndcg@10'][f'{mode} {v}']:.4f}" for v in
                                                  ("none", "N=1", "N=4", "N=8")) + " |")
    for mode in ("dense", "hybrid"):
        lines.append(f"| Δ {mode} vs no HyDE (paired, 90% CI) | | " + " | ".join(
            "{:+.4f} [{:+.4f}, {:+.4f}]".format(*r["paired_delta_90ci"][f"{mode} {v}"]) for v in ("N=1", "N=4", "N=8")) + " |")
    lat = r["added_latency_s"]
    lines += ["", "Added latency per query (median, s; generation + encoding): " +
              ", ".join(f"{k}: {v:.1f}" for k, v in lat.items() if v is not None) + ". HyDE stays opt-in (`--hyde`).", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    import datetime

    from eval.benchmarks.report import machine, write_section
    from eval.retrieval import load_qrels, load_queries

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, default=Path("build/scifact"))
    parser.add_argument("--data", type=Path, default=SCIFACT)
    parser.add_argument("--generator", default="smollm2")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timing-queries", type=int, default=20, help="queries timed for the added latency")
    parser.add_argument("--out", type=Path, default=Path("build/hyde-scifact"))
    parser.add_argument("--threads", type=int, default=2)
    a = parser.parse_args(argv)
    import torch

    torch.set_num_threads(a.threads)
    qrels = load_qrels(a.data / "qrels" / "test.tsv")
    all_q = load_queries(a.data / "queries.jsonl")
    queries = {q: all_q[q] for q in list(qrels)[: a.queries]}
    a.out.mkdir(parents=True, exist_ok=True)
    write_documents(queries, a.generator, a.out / "docs.jsonl", a.max_new_tokens, a.seed)
    timing = a.out / "timing.json"
    if timing.exists():
        gen_seconds = {int(n): v for n, v in json.loads(timing.read_text(encoding="utf-8")).items()}
    else:
        gen_seconds = time_generation(queries, a.generator, a.max_new_tokens, a.timing_queries)
        timing.write_text(json.dumps(gen_seconds) + "\n", encoding="utf-8")
    r = evaluate_all(a.index, queries, a.out / "docs.jsonl", qrels, gen_seconds)
    (a.out / "hyde.json").write_text(json.dumps(r, indent=2) + "\n", encoding="utf-8")
    write_section("hyde-scifact", markdown(r, a, machine(), datetime.date.today().isoformat()))
    print(json.dumps(r, indent=2))


if __name__ == "__main__":
    main()
