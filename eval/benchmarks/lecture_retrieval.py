"""SciFact (BEIR, test split): decoder-LLM embeddings and query2doc expansion, on a seeded query sample.

Two measurements of the lecture's retrieval systems (issue 18, items 2 and 3), both on a seeded
sample of ``--queries`` SciFact test queries (seed ``--seed``; all 300 with ``--queries 300``):

``embeddings``: **dense re-ranking of the BM25 top-C** (``--candidates``) passages of each query,
by MiniLM and by ``llm:MODEL`` with PromptEOL, Echo and mean pooling (:mod:`rag.llm_embed`).
Every encoder reads the same candidate texts, cut to ``--max-tokens`` of its own tokens, and
re-orders the same list, so the nDCG@10 differences are paired; a relevant document outside
the BM25 top-C is missed by all alike (the BM25 order of the same list is reported too).
Encoding speed is passages per second over the candidates (batch 16, the passages sorted by
length), on the machine as it was.

``query2doc``: one greedy pseudo-document per query (:mod:`rag.query2doc`, written in batches of
``--batch``, kept in ``pseudo_docs.jsonl`` so a run resumes), then

* BM25 over the **whole corpus** with the query and with ``q × 5 + d'`` (query2doc sparse);
* dense re-ranking of the plain-BM25 top-C by MiniLM with the query, with ``q [SEP] d'``
  (query2doc dense) and with HyDE's vector from the same single document,
  ``normalise(f(q) + f(d'))`` (HyDE with N = 1; the paper samples N = 8 at temperature 0.7).

Every variant reports nDCG@10 with a 90% percentile-bootstrap interval, and its paired
difference to its baseline with one too.

Run (the BM25 index: ``rag index $D/corpus.jsonl --out build/scifact-bm25 --no-dense``)::

    nice -n 10 python -m eval.benchmarks.lecture_retrieval query2doc --index build/scifact-bm25 --queries 40 --out build/q2d
    nice -n 10 python -m eval.benchmarks.lecture_retrieval embeddings --index build/scifact-bm25 --queries 12 --out build/llm-emb
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

SCIFACT = Path("/work/shared/data/scifact")


def _sample(n: int, seed: int) -> tuple[dict[str, str], dict[str, dict[str, int]]]:
    from rag.queries import load_qrels, load_queries

    qrels = load_qrels(SCIFACT / "qrels" / "test.tsv")
    queries = load_queries(SCIFACT / "queries.jsonl")
    ids = sorted(q for q in qrels if q in queries)
    ids = sorted(random.Random(seed).sample(ids, min(n, len(ids))))
    return {q: queries[q] for q in ids}, {q: qrels[q] for q in ids}


def _doc_run(hits) -> dict[str, float]:
    """Document scores from passage hits (best passage per document)."""
    out: dict[str, float] = {}
    for h in hits:
        out[h.doc_id] = max(out.get(h.doc_id, -np.inf), float(h.score))
    return out


def _summary(per_query: dict[str, float], base: dict[str, float] | None) -> dict:
    from eval.retrieval_report import bootstrap_mean_ci

    y = np.array([per_query[q] for q in sorted(per_query)])
    out = {"ndcg@10": round(float(y.mean()), 4), "ci90": [round(v, 4) for v in bootstrap_mean_ci(y)]}
    if base is not None:
        d = y - np.array([base[q] for q in sorted(per_query)])
        out["diff"] = round(float(d.mean()), 4)
        out["diff_ci90"] = [round(float(v), 4) for v in np.quantile(
            np.random.default_rng(0).choice(d, size=(10_000, d.size)).mean(axis=1), [0.05, 0.95])]
    return out


def _ndcg(run: dict[str, dict[str, float]], qrels) -> dict[str, float]:
    from eval.retrieval import evaluate

    return {q: v["ndcg@10"] for q, v in evaluate(run, qrels, ("ndcg@10",))[1].items()}


def _rerank(candidates: dict[str, list], qvecs: dict[str, np.ndarray], pvecs: dict[str, np.ndarray]) -> dict:
    run = {}
    for q, hits in candidates.items():
        run[q] = _doc_run([replace(h, score=float(qvecs[q] @ pvecs[h.id])) for h in hits])
    return run


def _text(h) -> str:
    return f"{h.title} {h.text}" if h.title else h.text


def _encode_candidates(encoder, candidates) -> tuple[dict[str, np.ndarray], float]:
    unique = {h.id: _text(h) for hits in candidates.values() for h in hits}
    t = time.perf_counter()
    vecs = encoder.encode_passages(list(unique.values()))  # (P, d)
    rate = len(unique) / (time.perf_counter() - t)
    return dict(zip(unique, vecs)), rate


def embeddings(args) -> dict:
    from rag.encoder import Encoder, EncoderConfig
    from rag.index import open_index

    queries, qrels = _sample(args.queries, args.seed)
    bm25 = open_index(args.index).retriever("bm25")
    candidates = {q: bm25.search(text, args.candidates) for q, text in queries.items()}
    runs = {"bm25 (candidate order)": {q: _doc_run(h) for q, h in candidates.items()}}
    encoders = {"MiniLM": EncoderConfig(device="cpu", batch_size=16, max_seq_length=args.max_tokens)}
    for pooling in args.poolings:
        encoders[f"llm:{args.model} {pooling}"] = EncoderConfig(model=f"llm:{args.model}", pooling=pooling, device="cpu",
                                                                batch_size=16, max_seq_length=args.max_tokens)
    rates = {}
    for name, config in encoders.items():
        enc = Encoder(config)
        pvecs, rates[name] = _encode_candidates(enc, candidates)
        qvecs = dict(zip(queries, enc.encode_queries(list(queries.values()))))
        runs[name] = _rerank(candidates, qvecs, pvecs)
        ndcg = float(np.mean(list(_ndcg(runs[name], qrels).values())))
        print(json.dumps({"encoder": name, "passages_per_s": round(rates[name], 3), "ndcg@10": round(ndcg, 4)}), flush=True)
    per = {name: _ndcg(run, qrels) for name, run in runs.items()}
    rows = {name: _summary(per[name], per["MiniLM"] if name.startswith("llm:") else None) | (
        {"passages_per_s": round(rates[name], 3)} if name in rates else {}) for name in runs}
    return {"protocol": f"dense re-ranking of BM25 top-{args.candidates} passages, {len(queries)} SciFact test queries "
                        f"(seed {args.seed}), texts cut to {args.max_tokens} tokens", "rows": rows}


def query2doc(args) -> dict:
    from rag.encoder import Encoder, EncoderConfig
    from rag.hyde import hyde_vector
    from rag.index import open_index
    from rag.query2doc import Query2docConfig, dense_query, pseudo_documents, sparse_query

    queries, qrels = _sample(args.queries, args.seed)
    if args.limit:  # the first queries of the sample (id order): those a stopped run generated first
        queries = {q: queries[q] for q in list(queries)[: args.limit]}
        qrels = {q: qrels[q] for q in queries}
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "pseudo_docs.jsonl"
    docs = {r["qid"]: r for r in map(json.loads, path.open(encoding="utf-8"))} if path.exists() else {}
    todo = [q for q in queries if q not in docs]
    config = Query2docConfig(max_new_tokens=args.max_new_tokens, batch_size=args.batch)
    if todo:
        from rag.generation.generator import Generator, GeneratorConfig

        gen = Generator.load(GeneratorConfig(args.generator))
        with path.open("a", encoding="utf-8") as fh:
            for s in range(0, len(todo), args.batch):
                chunk = todo[s : s + args.batch]
                t = time.perf_counter()
                out = pseudo_documents([queries[q] for q in chunk], gen, config)
                secs = (time.perf_counter() - t) / len(chunk)
                for q in chunk:
                    docs[q] = {"qid": q, "doc": out[queries[q]], "seconds": secs}
                    fh.write(json.dumps(docs[q], ensure_ascii=False) + "\n")
                fh.flush()
                print(f"generated {min(s + args.batch, len(todo))}/{len(todo)} ({secs:.1f} s/query)", flush=True)
    d = {q: docs[q]["doc"] for q in queries}
    index = open_index(args.index)
    bm25 = index.retriever("bm25")
    runs = {"bm25": {q: _doc_run(bm25.search(t, 100)) for q, t in queries.items()},
            "bm25 + query2doc": {q: _doc_run(bm25.search(sparse_query(t, d[q], config.repeats), 100))
                                 for q, t in queries.items()}}
    candidates = {q: bm25.search(t, args.candidates) for q, t in queries.items()}
    enc = Encoder(EncoderConfig(device="cpu", batch_size=16, max_seq_length=args.max_tokens))
    pvecs, _ = _encode_candidates(enc, candidates)
    qv = enc.encode_queries(list(queries.values()))
    q2d = enc.encode_queries([dense_query(t, d[q], " [SEP] ") for q, t in queries.items()])
    hyde = np.stack([hyde_vector(t, [d[q]], enc) for q, t in queries.items()])
    for name, vecs in (("dense rerank", qv), ("dense rerank + query2doc", q2d), ("dense rerank + HyDE (N=1)", hyde)):
        runs[name] = _rerank(candidates, dict(zip(queries, vecs)), pvecs)
    per = {name: _ndcg(run, qrels) for name, run in runs.items()}
    base = {"bm25": None, "bm25 + query2doc": "bm25", "dense rerank": None,
            "dense rerank + query2doc": "dense rerank", "dense rerank + HyDE (N=1)": "dense rerank"}
    rows = {n: _summary(per[n], per[b] if b else None) for n, b in base.items()}
    gen_s = [docs[q]["seconds"] for q in queries]
    return {"protocol": f"{len(queries)} SciFact test queries (seed {args.seed}); BM25 over the whole corpus; dense = "
                        f"MiniLM re-ranking of the BM25 top-{args.candidates}; one greedy pseudo-document per query, "
                        f"at most {args.max_new_tokens} tokens, generated in batches of {args.batch}",
            "generation_s_per_query_mean": round(float(np.mean(gen_s)), 2), "rows": rows,
            "example": {"query": next(iter(queries.values())), "pseudo_doc": next(iter(d.values()))}}


def main(argv: list[str] | None = None) -> dict:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["embeddings", "query2doc"])
    ap.add_argument("--index", type=Path, required=True, help="a SciFact index with BM25")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=0, help="query2doc: evaluate only the first queries of the sample")
    ap.add_argument("--candidates", type=int, default=20, help="C: BM25 passages re-ranked per query")
    ap.add_argument("--model", default="smollm2", help="embeddings: the causal LM")
    ap.add_argument("--poolings", nargs="+", default=["prompteol", "echo", "mean"])
    ap.add_argument("--max-tokens", type=int, default=128, help="tokens of each text the dense encoders read")
    ap.add_argument("--generator", default="smollm2", help="query2doc: the causal LM")
    ap.add_argument("--max-new-tokens", type=int, default=96)
    ap.add_argument("--batch", type=int, default=10, help="query2doc: queries generated together")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    result = (embeddings if args.what == "embeddings" else query2doc)(args)
    result |= {"hardware": f"{platform.machine()} CPU, {args.threads} threads, torch {torch.__version__}",
               "date": time.strftime("%Y-%m-%d")}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.what}.json").write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=1, ensure_ascii=False))
    return result


if __name__ == "__main__":
    main()
