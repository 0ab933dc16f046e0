"""Retrieval report intervals stay in the metric's range; the worst queries show their relevant documents."""

from __future__ import annotations

import numpy as np
import pytest

from eval.ppi import _ppi_py
from eval.retrieval_report import bootstrap_mean_ci, build_report, render_markdown


def test_recall_near_one_gets_an_interval_inside_the_unit_interval():
    # Given 300 queries, Recall@100 = 1 for 298, 0.5 for 1 and 0 for 1 (mean 0.995): the CLT interval leaves [0, 1]
    Y = np.r_[np.ones(298), 0.5, 0.0]
    clt = np.ravel(_ppi_py().classical_mean_ci(Y, alpha=0.1))
    assert clt[1] > 1.0
    # When
    lo, hi = bootstrap_mean_ci(Y, alpha=0.1)
    # Then: inside the range, around the mean, about as wide below the mean as the CLT interval
    assert 0.0 <= lo < Y.mean() < hi <= 1.0
    assert Y.mean() - lo == pytest.approx(Y.mean() - clt[0], rel=0.35)


def test_bootstrap_interval_agrees_with_the_clt_in_the_interior_and_is_seeded():
    # Given per-query values well inside (0, 1)
    Y = np.random.default_rng(3).beta(4, 3, 300)
    clt = np.ravel(_ppi_py().classical_mean_ci(Y, alpha=0.1))
    # When
    ci = bootstrap_mean_ci(Y, alpha=0.1)
    # Then
    np.testing.assert_allclose(ci, clt, atol=0.004)
    assert bootstrap_mean_ci(Y, alpha=0.1) == ci


def test_constant_ones_get_the_exact_binomial_interval():
    # Given Recall@100 = 1 on all 30 queries; Clopper-Pearson at 90%: [0.05^(1/30), 1]
    lo, hi = bootstrap_mean_ci(np.ones(30), alpha=0.1)
    assert lo == pytest.approx(0.05 ** (1 / 30)) and hi == 1.0


def test_worst_queries_list_relevant_documents_with_their_rank():
    # Given q2's relevant document at rank 3 and another never retrieved
    per_query = {"q1": {"ndcg@10": 1.0}, "q2": {"ndcg@10": 0.3}}
    run = {"q1": {"a": 2.0, "b": 1.0}, "q2": {"x": 3.0, "y": 2.0, "rel": 1.0}}
    qrels = {"q1": {"a": 1}, "q2": {"rel": 1, "gone": 2, "nonrel": 0}}
    # When
    report = build_report(per_query, run, {"q1": "first", "q2": "second"}, {"mode": "bm25"}, qrels=qrels)
    # Then
    worst = report["worst"][0]
    assert worst["id"] == "q2"
    assert worst["relevant"] == [{"id": "gone", "grade": 2, "rank": None}, {"id": "rel", "grade": 1, "rank": 3}]
    assert "gone (rank not retrieved), rel (rank 3)" in render_markdown(report, "t")
