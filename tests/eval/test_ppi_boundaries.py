"""Intervals for a mean of binary labels stay in [0, 1] and keep a width when every label agrees."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import beta

from eval import ppi
from eval.bayes_ppi import bayes_diff_mean_ci, bayes_diff_mean_pointestimate
from eval.estimators import Method, effective_labels, estimate_all
from rag.cli import main


@pytest.fixture(scope="module")
def all_ones():
    """30 human labels all 1, a judge right ~93% of the time, 300 judge-only items."""
    rng = np.random.default_rng(7)
    Y = np.ones(30)
    Yhat = (rng.random(30) < 0.93).astype(float)
    Yhat_unlabeled = (rng.random(300) < 0.93).astype(float)
    return Y, Yhat, Yhat_unlabeled


def test_classical_interval_of_thirty_successes_is_clopper_pearson():
    # Given 30/30; Clopper-Pearson at 90%: lower = Beta(0.05; 30, 1) = 0.05^(1/30) = 0.9050, upper 1
    Y = np.ones(30)
    # When
    lo, hi = ppi.classical_mean_ci(Y, alpha=0.1)
    # Then
    assert lo == pytest.approx(0.05 ** (1 / 30), abs=1e-9) and lo == pytest.approx(0.905, abs=5e-4)
    assert hi == 1.0
    # and 2 successes of 30 (fewer than 5 of a value) is exact too, matching the Beta quantiles
    Y2 = np.r_[np.ones(2), np.zeros(28)]
    np.testing.assert_allclose(ppi.classical_mean_ci(Y2, 0.1), [beta.ppf(0.05, 2, 29), beta.ppf(0.95, 3, 28)], atol=1e-9)


def test_classical_interval_is_ppi_py_away_from_the_boundary():
    # Given 12 ones of 20: the normal approximation holds, parity with ppi_py is kept
    Y = np.r_[np.ones(12), np.zeros(8)]
    # Then
    np.testing.assert_allclose(ppi.classical_mean_ci(Y, 0.1), np.ravel(ppi._ppi_py().classical_mean_ci(Y, alpha=0.1)), atol=1e-12)


def test_every_estimator_stays_in_the_unit_interval_with_positive_width(all_ones):
    # Given
    Y, Yhat, Yhat_unlabeled = all_ones
    raw_lo, raw_hi = np.ravel(ppi._ppi_py().ppi_mean_ci(Y, Yhat, Yhat_unlabeled, alpha=0.1, lam=1.0))
    assert raw_hi > 1.0  # what ppi_py (and this project before) reported
    # When
    results = estimate_all(Y, Yhat, Yhat_unlabeled, alpha=0.1)
    # Then
    for est in results.values():
        assert 0.0 <= est.lower < est.upper <= 1.0 and 0.0 <= est.estimate <= 1.0, est
        n_eff = effective_labels(est, results[Method.CLASSICAL])
        assert n_eff is not None and np.isfinite(n_eff) and n_eff > 0
    assert results[Method.PPI].lower == pytest.approx(raw_lo, abs=1e-12) and results[Method.PPI].upper == 1.0
    assert bayes_diff_mean_ci(Y, Yhat, Yhat_unlabeled)[1] <= 1.0
    assert bayes_diff_mean_pointestimate(Y, Yhat, Yhat_unlabeled) <= 1.0


def test_constant_judge_and_labels_fall_back_to_the_classical_interval():
    # Given labels and judge all 1: no variance at all
    Y, ones = np.ones(30), np.ones(300)
    # When
    lo, hi = ppi.ppi_mean_ci(Y, np.ones(30), ones, alpha=0.1)
    # Then
    assert (lo, hi) == pytest.approx(ppi.clopper_pearson_ci(Y, 0.1))


def test_eval_ppi_cli_reports_finite_effective_labels(all_ones, tmp_path, capsys):
    # Given the labels and judge files of the all-ones case
    Y, Yhat, Yhat_unlabeled = all_ones
    score = np.r_[Yhat, Yhat_unlabeled]
    labels, judge = tmp_path / "labels.jsonl", tmp_path / "judge.jsonl"
    labels.write_text("".join(json.dumps({"id": f"q{i}", "label": 1}) + "\n" for i in range(30)))
    judge.write_text("".join(json.dumps({"id": f"q{i}", "score": float(s)}) + "\n" for i, s in enumerate(score)))
    # When
    rc_json = main(["eval", "ppi", "--labels", str(labels), "--judge", str(judge), "--json"])
    out = json.loads(capsys.readouterr().out)
    rc_text = main(["eval", "ppi", "--labels", str(labels), "--judge", str(judge)])
    text = capsys.readouterr().out
    # Then
    assert rc_json == rc_text == 0
    assert all(0.0 <= v["lower"] < v["upper"] <= 1.0 for v in out.values())
    assert out["classical"]["lower"] == pytest.approx(0.9050, abs=5e-5)
    assert "inf" not in text
