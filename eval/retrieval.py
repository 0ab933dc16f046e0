"""Retrieval evaluation: metrics of a run against qrels via pytrec_eval.

Queries, qrels and run files are read and written by :mod:`rag.queries`.

Metrics follow BEIR's conventions: nDCG@10 (``ndcg_cut_10``), Recall@100 (``recall_100``),
MAP@100 (``map_cut_100``) and MRR@10 (``recip_rank`` on the run cut to its top 10), averaged over
the queries that have relevance judgments.
"""

from __future__ import annotations


from indexes.errors import InputError
# The formats live beside the corpus readers (the CLI reads them to search and to train);
# re-exported here, where evaluation code has always found them.
from rag.queries import Qrels, Run, load_qrels, load_queries, ranking, read_trec_run, write_trec_run

__all__ = ["METRICS", "Qrels", "Run", "evaluate", "load_qrels", "load_queries", "rank_scores", "ranking", "read_trec_run", "write_trec_run"]

#: Our metric names → (pytrec_eval measure, cut applied to the run before evaluating).
METRICS: dict[str, tuple[str, int | None]] = {
    "ndcg@10": ("ndcg_cut_10", None),
    "recall@100": ("recall_100", None),
    "mrr@10": ("recip_rank", 10),
    "map@100": ("map_cut_100", None),
}


def evaluate(run: Run, qrels: Qrels, metrics: tuple[str, ...] = tuple(METRICS)) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Mean and per-query metrics of ``run`` over the queries in ``qrels``.

    A judged query missing from the run scores 0 on every metric (it is not dropped).

    Returns:
        (means, per_query) with ``per_query[qid][metric]``.
    """
    import pytrec_eval

    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise InputError(f"unknown metric(s) {unknown}; choose from {sorted(METRICS)}")
    per_query: dict[str, dict[str, float]] = {q: {} for q in qrels}
    for name in metrics:
        measure, cut = METRICS[name]
        cut_run = {q: rank_scores(ranking(run.get(q, {}))[:cut]) for q in qrels}
        evaluator = pytrec_eval.RelevanceEvaluator(qrels, {measure})
        results = evaluator.evaluate({q: d for q, d in cut_run.items() if d})
        for q in qrels:
            per_query[q][name] = float(results.get(q, {}).get(measure, 0.0))
    means = {m: sum(per_query[q][m] for q in qrels) / len(qrels) for m in metrics}
    return means, per_query


def rank_scores(ranked: list[str]) -> dict[str, float]:
    """Scores that encode the ranks of ``ranked`` (n, n-1, …, 1), so that pytrec_eval evaluates
    exactly this order: trec_eval sorts by score and breaks ties by document id, which would
    re-order tied documents (Anserini likewise breaks ties before writing a run)."""
    n = len(ranked)
    return {d: float(n - i) for i, d in enumerate(ranked)}
