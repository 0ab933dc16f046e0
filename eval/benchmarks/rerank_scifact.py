"""Hybrid vs hybrid + cross-encoder reranker: SciFact test nDCG@10 at depths 20/50/100, latency per
query per depth, and the effect on SQuAD dev paragraphs (a collection the reranker never saw).

Usage::

    nice -n 10 python -m eval.benchmarks.rerank_scifact --index build/scifact --reranker build/reranker-scifact \\
        --data ../shared/data/scifact --squad-index ../bench/build/squad/index \\
        --squad-json ../shared/data/squad-dev/dev-v1.1.json --squad-sample 200 --write-docs

Each query's first-stage (hybrid) top ``max(depths)`` passages are scored by the cross-encoder
once; the ranking at depth d reorders the top d of them by those scores, alone (α = 1) and
interpolated with the first stage's at the reranker's weight α (``rerank.json`` or ``--weight``;
:func:`rag.rerank.rerank_interpolated`, exactly what ``--rerank-depth d --rerank-weight α`` does; a pair's score does not
depend on the other pairs, up to float32 padding noise, and the latency queries check that the
served path gives the same top 10). Documents are ranked by their best passage, as
``rag eval retrieval``. The difference in nDCG@10 gets a paired percentile-bootstrap interval
(2,000 resamples of the queries, seeded). SQuAD: a seeded sample of answerable dev questions, each
judged relevant to the one paragraph it was written on.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from datetime import date
from pathlib import Path

import numpy as np

from eval.retrieval import evaluate
from rag.index import open_index
from rag.queries import load_qrels, load_queries
from rag.rerank import CrossEncoderReranker, RerankConfig, RerankingRetriever, pair_text, rerank_interpolated


def first_stage(index, queries: dict[str, str], depth: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each query's hybrid top-``depth`` passage rows and scores (no reranking)."""
    retriever = index.retriever("hybrid", rerank=False)
    qids = list(queries)
    out = {}
    for start in range(0, len(qids), 64):
        chunk = qids[start : start + 64]
        out.update(zip(chunk, retriever.rank_batch([queries[q] for q in chunk], depth)))
    return out


def head_scores(reranker, index, queries, rankings, depth: int) -> tuple[dict[str, np.ndarray], float]:
    """Cross-encoder scores of each query's top-``depth`` passages, and pairs scored per second."""
    out, pairs, t0 = {}, 0, time.perf_counter()
    for i, (qid, (rows, _)) in enumerate(rankings.items(), start=1):
        head = rows[:depth].tolist()
        out[qid] = reranker.score(queries[qid], [pair_text(p.title, p.text) for p in index.store.get(head)])
        pairs += len(head)
        if i % 10 == 0:
            rate = pairs / (time.perf_counter() - t0)
            print(f"  scored {i}/{len(rankings)} queries ({pairs} pairs, {rate:.1f} pairs/s)", flush=True)
    return out, pairs / (time.perf_counter() - t0)


def document_run(ranking, doc_ids, k: int = 100) -> dict[str, float]:
    """The first ``k`` distinct documents of a passage ranking, each at its best passage's score."""
    docs: dict[str, float] = {}
    for r, s in zip(ranking[0].tolist(), ranking[1].tolist()):
        docs.setdefault(doc_ids[r], s)
        if len(docs) == k:
            break
    return docs


def paired_interval(a: dict[str, float], b: dict[str, float], seed: int = 0, n: int = 2000) -> tuple[float, float]:
    """90% percentile-bootstrap interval of mean(b - a) over the queries."""
    d = np.array([b[q] - a[q] for q in a])
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, len(d), size=(n, len(d)))].mean(axis=1)
    return float(np.quantile(means, 0.05)), float(np.quantile(means, 0.95))


def compare(index, reranker, queries, qrels, depths: list[int]) -> tuple[list[dict], float]:
    """Rows of metrics for hybrid and for each rerank depth (α = 1, and the reranker's α when it
    is below 1), and the cross-encoder's pairs/s."""
    doc_ids = index.store.doc_ids()
    deepest = max(depths)
    rankings = first_stage(index, queries, index.per_document_depth(100))
    scores, rate = head_scores(reranker, index, queries, rankings, deepest)
    base_run = {q: document_run(r, doc_ids) for q, r in rankings.items()}
    base, base_q = evaluate(base_run, qrels)
    rows = [{"system": "hybrid", **base}]
    alphas = [1.0] + ([reranker.alpha] if reranker.alpha < 1.0 else [])
    for d in depths:
        for alpha in alphas:
            run = {q: document_run(rerank_interpolated(rankings[q], scores[q][:d], alpha), doc_ids) for q in queries}
            means, per_q = evaluate(run, qrels)
            lo, hi = paired_interval({q: base_q[q]["ndcg@10"] for q in qrels}, {q: per_q[q]["ndcg@10"] for q in qrels})
            label = f"hybrid + rerank top-{d}" + (f", α = {alpha:.2f}" if alpha < 1.0 else " (CE only)" if len(alphas) > 1 else "")
            rows.append({"system": label, **means, "delta_ci": (lo, hi)})
    return rows, rate


def latency(index, reranker, queries: list[str], depths: list[int]) -> list[dict]:
    """Median and p90 ms per query of hybrid alone and with reranking at each depth (top 10, one query at a time)."""
    base = index.retriever("hybrid", rerank=False)
    out = []
    for label, retriever in [("hybrid", base)] + [(f"rerank top-{d}", RerankingRetriever(base, reranker.with_depth(d)))
                                                   for d in depths]:
        retriever.search(queries[0], 10)  # warm-up
        ms = []
        for q in queries:
            t0 = time.perf_counter()
            retriever.search(q, 10)
            ms.append(1e3 * (time.perf_counter() - t0))
        out.append({"system": label, "median_ms": statistics.median(ms), "p90_ms": float(np.quantile(ms, 0.9))})
        print(f"  latency {label}: median {out[-1]['median_ms']:.0f} ms", flush=True)
    return out


def squad_judgments(squad_json: Path, index, sample: int, seed: int) -> tuple[dict[str, str], dict[str, dict[str, int]]]:
    """A seeded sample of answerable SQuAD questions and their paragraph, as ids of ``index``.

    The index may name paragraphs ``<title>/p<n>`` (``rag index dev.json``) or ``<title>#<n>``
    (``eval.benchmarks.squad_corpus``); either is matched, and each judged paragraph's text is
    checked against the question's context.
    """
    from rag.squad import read_squad

    paragraphs, questions = read_squad(squad_json)
    context = {p.id: p.text for p in paragraphs}
    known = set(index.store.doc_ids())
    answerable = [q for q in questions if q.answers]
    picked = random.Random(seed).sample(answerable, min(sample, len(answerable)))
    queries, qrels = {}, {}
    for q in picked:
        doc = q.paragraph_id if q.paragraph_id in known else q.paragraph_id.replace("/p", "#")
        if doc not in known:
            raise SystemExit(f"paragraph {q.paragraph_id} of question {q.id} is not in {index.path}")
        queries[q.id], qrels[q.id] = q.question, {doc: 1}
    rows = index.store.get([index.store.doc_ids().index(next(iter(qrels[q.id]))) for q in picked[:5]])
    if any(context[q.paragraph_id].split()[:20] != r.text.split()[:20] for q, r in zip(picked[:5], rows)):
        raise SystemExit("the SQuAD index's paragraphs do not match the JSON file's")
    return queries, qrels


def table(rows: list[dict], metrics=("ndcg@10", "mrr@10", "recall@100", "map@100")) -> str:
    head = "| system | " + " | ".join(metrics) + " | Δ nDCG@10 (90% CI) |\n|---|" + "---|" * (len(metrics) + 1)
    lines = [head]
    for r in rows:
        ci = f"[{r['delta_ci'][0]:+.3f}, {r['delta_ci'][1]:+.3f}]" if "delta_ci" in r else ""
        lines.append(f"| {r['system']} | " + " | ".join(f"{r[m]:.4f}" for m in metrics) + f" | {ci} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, required=True, help="SciFact hybrid index")
    parser.add_argument("--reranker", required=True, help="cross-encoder folder (rag train reranker)")
    parser.add_argument("--weight", type=float, default=None, help="interpolation weight α (default: its rerank.json, else 1)")
    parser.add_argument("--data", type=Path, default=Path("../shared/data/scifact"))
    parser.add_argument("--depths", type=int, nargs="+", default=[20, 50, 100])
    parser.add_argument("--sample", type=int, default=None, help="SciFact test queries (seeded sample; default all)")
    parser.add_argument("--latency-queries", type=int, default=10)
    parser.add_argument("--squad-index", type=Path, default=None)
    parser.add_argument("--squad-json", type=Path, default=None)
    parser.add_argument("--squad-sample", type=int, default=500)
    parser.add_argument("--squad-depths", type=int, nargs="+", default=[20])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args(argv)

    reranker = CrossEncoderReranker.load(RerankConfig(args.reranker, weight=args.weight), device="cpu")
    print(f"rerank weight α = {reranker.alpha:.2f}", flush=True)
    qrels = load_qrels(args.data / "qrels" / "test.tsv")
    all_queries = load_queries(args.data / "queries.jsonl")
    qids = sorted(qrels)
    if args.sample and args.sample < len(qids):
        qids = sorted(random.Random(args.seed).sample(qids, args.sample))
    queries, qrels = {q: all_queries[q] for q in qids}, {q: qrels[q] for q in qids}
    index = open_index(args.index)
    print(f"SciFact: {len(queries)} test queries, depths {args.depths}", flush=True)
    rows, rate = compare(index, reranker, queries, qrels, args.depths)
    print(table(rows), flush=True)
    lat = latency(index, reranker, [queries[q] for q in qids[: args.latency_queries]], args.depths)
    squad_rows, squad_n = [], 0
    if args.squad_index and args.squad_json:
        squad_index = open_index(args.squad_index)
        sq, sj = squad_judgments(args.squad_json, squad_index, args.squad_sample, args.seed)
        squad_n = len(sq)
        print(f"SQuAD: {squad_n} questions, depths {args.squad_depths}", flush=True)
        squad_rows, _ = compare(squad_index, reranker, sq, sj, args.squad_depths)
        print(table(squad_rows), flush=True)
    if args.write_docs:
        from eval.benchmarks.report import machine, write_section

        sample = f"a seeded sample of {len(queries)} of the 300" if args.sample else "all 300"
        md = [f"## Reranking: hybrid + cross-encoder (`{args.reranker}`)", "",
              f"Machine: {machine()}; a 2-core VM **shared with other engineers' jobs** (latencies include waiting "
              f"for a core). Date: {date.today().isoformat()}. Command: `nice -n 10 python -m eval.benchmarks.rerank_scifact "
              f"--index {args.index} --reranker {args.reranker}" + (f" --weight {args.weight}" if args.weight is not None else "") + f" --depths {' '.join(map(str, args.depths))}"
              + (f" --sample {args.sample}" if args.sample else "")
              + (f" --squad-index {args.squad_index} --squad-json {args.squad_json} --squad-sample {args.squad_sample} "
                 f"--squad-depths {' '.join(map(str, args.squad_depths))}" if squad_n else "") + " --write-docs`.", "",
              f"SciFact test ({sample} queries); documents ranked by their best passage; cross-encoder "
              f"throughput {rate:.1f} pairs/s.", "", table(rows), "",
              "Latency per query (top 10, one query at a time, "
              f"{len(lat and qids[: args.latency_queries])} queries):", "",
              "| system | median ms | p90 ms |", "|---|---|---|",
              *[f"| {r['system']} | {r['median_ms']:.0f} | {r['p90_ms']:.0f} |" for r in lat]]
        if squad_n:
            md += ["", f"SQuAD v1.1 dev paragraphs as a retrieval collection ({squad_n} answerable questions, seeded "
                   "sample; one relevant paragraph each; never used in training):", "", table(squad_rows)]
        write_section("rerank", "\n".join(md))


if __name__ == "__main__":
    main()
