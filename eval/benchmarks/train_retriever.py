"""Retriever training benchmark on BEIR SciFact: the trained encoder against the embedded one.

Steps (each skipped when its output already exists, so an interrupted run resumes):

1. ``rag train retriever`` with the command's *default* settings on ``qrels/train.tsv`` (10 % of
   the 809 training queries held out as dev), timed;
2. ``rag index --encoder MODEL`` over the corpus;
3. nDCG@10 / Recall@100 on ``qrels/test.tsv`` (300 queries) in bm25, dense and hybrid modes, for
   the baseline index (embedded MiniLM) and the trained one;
4. ``rag train retriever --unsupervised`` on a random subset of the corpus (its loss curve).

Writes ``<work>/train-benchmark.json`` and the ``training`` section of ``docs/benchmarks.md``.

Usage::

    HF_HUB_OFFLINE=1 nice -n 5 .venv/bin/python -m eval.benchmarks.train_retriever \\
        --data ../shared/data/scifact --baseline-index build/scifact --work build/train
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from eval.benchmarks.report import machine, write_section



def rag(*args: str) -> float:
    """Run one ``rag`` command; its wall time in seconds."""
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "rag.cli", *args], check=True)
    return time.perf_counter() - t


def quality(index_dir: Path, data: Path) -> dict[str, dict[str, float]]:
    from eval.benchmarks.retrieval import quality as index_quality
    from rag.index import open_index

    index = open_index(index_dir)
    try:
        return index_quality(index, data, "test")
    finally:
        index.close()


def pooled_dev(data: Path, models: dict[str, str], dev_queries: list[str], max_seq_length: int = 128) -> dict[str, float]:
    """Dev-pool nDCG@10 (the training-time dev metric) of several models on the held-out queries."""
    from eval.retrieval import evaluate, load_qrels, load_queries
    from rag.models import load_sentence_transformer
    from rag.training.data import beir_pairs, load_documents
    from rag.training.dev_eval import DevEvaluator, dev_pool
    from rag.training.recipes import bm25_index

    documents = load_documents(data / "corpus.jsonl")
    qrels = {q: d for q, d in load_qrels(data / "qrels" / "train.tsv").items() if q in set(dev_queries)}
    pairs = beir_pairs(load_queries(data / "queries.jsonl"), qrels, documents)
    with bm25_index(data / "corpus.jsonl", None) as idx:
        pool = dev_pool(pairs, documents, idx)
    evaluator = DevEvaluator(pool, lambda run, q: evaluate(run, q, ("ndcg@10",))[0]["ndcg@10"])
    out = {}
    for name, model in models.items():
        st = load_sentence_transformer(model, "encoder", "cpu")[0]
        st.max_seq_length = max_seq_length
        out[name] = evaluator(st)["dev_ndcg@10"]
    return out


def run(data: Path, work: Path, baseline: Path, unsup_docs: int) -> dict:
    model, index = work / "scifact-dpr", work / "scifact-dpr-index"
    out: dict = {"machine": machine()}
    if not (model / "training.json").is_file():
        rag("train", "retriever", "--out", str(model), "--corpus", str(data / "corpus.jsonl"),
            "--queries", str(data / "queries.jsonl"), "--qrels", str(data / "qrels" / "train.tsv"), "--quiet")
    out["training"] = json.loads((model / "training.json").read_text())
    if not (index / "manifest.json").is_file():
        out["index_s"] = rag("index", str(data / "corpus.jsonl"), "--out", str(index), "--encoder", str(model))
    out["trained"] = quality(index, data)
    if not (baseline / "manifest.json").is_file():
        rag("index", str(data / "corpus.jsonl"), "--out", str(baseline))
    out["baseline"] = quality(baseline, data)
    unsup = work / "scifact-contriever"
    if unsup_docs and not (unsup / "training.json").is_file():
        rag("train", "retriever", "--unsupervised", "--out", str(unsup), "--corpus", str(data / "corpus.jsonl"),
            "--max-documents", str(unsup_docs), "--batch-size", "16", "--epochs", "2", "--logging-steps", "2", "--quiet")
    models = {"embedded MiniLM": "embedded:all-MiniLM-L6-v2", "supervised": str(model)}
    if (unsup / "training.json").is_file():
        out["unsupervised"] = json.loads((unsup / "training.json").read_text())
        models["unsupervised"] = str(unsup)
    out["dev_pool_ndcg@10"] = pooled_dev(data, models, out["training"]["dev_queries"])
    return out


def render(r: dict) -> str:
    t = r["training"]
    rows = "\n".join(f"| {mode} | {r['baseline'][mode]['ndcg@10']:.4f} | {r['trained'][mode]['ndcg@10']:.4f} | "
                     f"{r['baseline'][mode]['recall@100']:.4f} | {r['trained'][mode]['recall@100']:.4f} |"
                     for mode in ("bm25", "dense", "hybrid"))
    c = t["config"]
    unsup = ""
    if "unsupervised" in r:
        u = r["unsupervised"]
        curve = ", ".join(f"{s}: {v:.3f}" for s, v in u["loss_history"])
        unsup = (f"\n**Unsupervised (Contriever-style)**: {u['documents']} documents × {u['epochs']} crops, "
                 f"{u['train_seconds'] / 60:.1f} min; InfoNCE loss by step: {curve}.\n")
    index_s = f" Indexing the corpus with the trained encoder: {r['index_s'] / 60:.1f} min." if "index_s" in r else ""
    pooled = " · ".join(f"{k} **{v:.4f}**" for k, v in r["dev_pool_ndcg@10"].items())
    return f"""## Retriever training on BEIR SciFact

Machine: {r['machine']}. Command: `python -m eval.benchmarks.train_retriever --data ../shared/data/scifact`.

Training: `rag train retriever` defaults — base `{c['base_model']}`, {t['pairs']} pairs ({t['negatives_per_pair']}
BM25 hard negative each), {len(t['dev_queries'])} dev queries held out, {c['epochs']:g} epochs, batch {c['batch_size']},
lr {c['learning_rate']:g}, τ = {c['temperature']}, {c['max_seq_length']} training tokens. Training wall time
**{t['train_seconds'] / 60:.1f} min**; dev-pool nDCG@10 by step {', '.join(f'{s}: {v:.4f}' for s, v in t['dev_history'])}
(best kept).{index_s} Wall times depend on how busy the shared CPU was (see above).

nDCG@10 and Recall@100 on the test split (300 queries), embedded MiniLM vs the trained encoder:

| mode | nDCG@10 base | nDCG@10 trained | R@100 base | R@100 trained |
|---|---|---|---|---|
{rows}
{unsup}
Dev-pool nDCG@10 ({len(t['dev_queries'])} held-out training queries; positives ∪ BM25 top-10 of each, 128 tokens):
{pooled}.
"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/scifact"))
    parser.add_argument("--work", type=Path, default=Path("build/train"))
    parser.add_argument("--baseline-index", type=Path, default=Path("build/scifact"))
    parser.add_argument("--unsupervised-docs", type=int, default=128, help="0 skips the unsupervised run")
    parser.add_argument("--render-only", action="store_true", help="rewrite the docs from <work>/train-benchmark.json")
    args = parser.parse_args(argv)
    saved = args.work / "train-benchmark.json"
    if args.render_only:
        result = json.loads(saved.read_text())
    else:
        result = run(args.data, args.work, args.baseline_index, args.unsupervised_docs)
        saved.write_text(json.dumps(result, indent=2) + "\n")
    write_section("training", render(result))
    print(json.dumps({k: result[k] for k in ("baseline", "trained")}, indent=2))


if __name__ == "__main__":
    main()
