"""Retrieval metrics through pytrec_eval, checked against hand computation (formats: tests/rag/test_queries.py)."""

from __future__ import annotations

import math

import pytest

from eval.retrieval import evaluate


def test_metrics_by_hand():
    """One query, relevant docs a (grade 1) and c (grade 2); run ranks b, a, c.

    trec_eval (and so BEIR) uses linear gain, rel / log2(rank + 1):
    DCG@10  = 1/log2(3) + 2/log2(4) = 0.630930 + 1 = 1.630930
    IDCG@10 = 2/log2(2) + 1/log2(3) = 2 + 0.630930 = 2.630930
    nDCG@10 = 0.619906; MRR@10 = 1/2; AP = (1/2 + 2/3)/2 = 0.583333; Recall@100 = 1
    """
    # Given
    qrels = {"q": {"a": 1, "c": 2}}
    run = {"q": {"b": 3.0, "a": 2.0, "c": 1.0}}
    # When
    means, per_query = evaluate(run, qrels)
    # Then
    dcg = 1 / math.log2(3) + 2 / math.log2(4)
    idcg = 2 + 1 / math.log2(3)
    assert means["ndcg@10"] == pytest.approx(dcg / idcg, abs=1e-6)
    assert means["mrr@10"] == pytest.approx(0.5)
    assert means["map@100"] == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert means["recall@100"] == 1.0


def test_mrr_is_cut_at_10_and_missing_queries_score_zero():
    qrels = {"q1": {"rel": 1}, "q2": {"x": 1}}
    run = {"q1": {f"d{i}": 100.0 - i for i in range(10)} | {"rel": 1.0}}  # relevant at rank 11
    means, per_query = evaluate(run, qrels)
    assert per_query["q1"]["mrr@10"] == 0.0 and per_query["q1"]["recall@100"] == 1.0
    assert per_query["q2"] == {"ndcg@10": 0.0, "recall@100": 0.0, "mrr@10": 0.0, "map@100": 0.0}
