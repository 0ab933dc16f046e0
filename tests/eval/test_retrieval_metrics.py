"""Retrieval metrics through pytrec_eval, checked against hand computation; qrels/run formats."""

from __future__ import annotations

import math

import pytest

from eval.retrieval import evaluate, load_qrels, load_queries, read_trec_run, write_trec_run
from indexes.errors import InputError


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


def test_beir_qrels_with_crlf_and_header(tmp_path):
    f = tmp_path / "qrels.tsv"
    f.write_bytes(b"query-id\tcorpus-id\tscore\r\n1\t10\t1\r\n1\t11\t1\r\n2\t12\t1\r\n")
    assert load_qrels(f) == {"1": {"10": 1, "11": 1}, "2": {"12": 1}}


def test_queries_never_read_metadata(tmp_path):
    f = tmp_path / "q.jsonl"
    f.write_text('{"_id": "1", "text": "claim", "metadata": {"10": [{"label": "SUPPORT"}]}}\n')
    assert load_queries(f) == {"1": "claim"}


@pytest.mark.parametrize("content, message", [('{"_id": "1", "text": ""}\n', "non-empty"),
                                              ('{"_id": "1", "text": "a"}\n{"_id": "1", "text": "b"}\n', "duplicate query id"),
                                              ("not json\n", "expected a JSON object")])
def test_bad_queries(tmp_path, content, message):
    f = tmp_path / "q.jsonl"
    f.write_text(content)
    with pytest.raises(InputError, match=message):
        load_queries(f)


def test_trec_run_round_trip(tmp_path):
    run = {"q1": {"a": 2.5, "b": 1.25}, "q2": {"c": 0.5}}
    write_trec_run(tmp_path / "r.trec", run)
    assert (tmp_path / "r.trec").read_text().splitlines()[0] == "q1 Q0 a 1 2.500000 rag"
    assert read_trec_run(tmp_path / "r.trec") == run
