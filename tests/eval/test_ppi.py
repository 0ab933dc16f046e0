"""Parity of eval.ppi with ppi_py, and hand-worked PPI arithmetic."""

from __future__ import annotations

import numpy as np
import pytest

from eval import ppi


def _ppi_py():
    return ppi._ppi_py()


@pytest.fixture(scope="module", params=[0, 1, 2, 3, 4])
def data(request):
    """Random (Y, Yhat, Yhat_unlabeled): binary labels with a noisy continuous judge."""
    rng = np.random.default_rng(request.param)
    n, N = int(rng.integers(20, 400)), int(rng.integers(50, 5000))
    Y = (rng.random(n) < 0.6).astype(float)
    Yhat = np.clip(0.7 * Y + rng.normal(0.15, 0.3, n), 0, 1)
    Yhat_unlabeled = np.clip(0.7 * (rng.random(N) < 0.6) + rng.normal(0.15, 0.3, N), 0, 1)
    return Y, Yhat, Yhat_unlabeled


@pytest.mark.parametrize("alpha", [0.05, 0.1, 0.3])
def test_classical_ci_matches_ppi_py(data, alpha):
    # Given
    Y, _, _ = data
    # When
    ours = ppi.classical_mean_ci(Y, alpha=alpha)
    ref = _ppi_py().classical_mean_ci(Y, alpha=alpha)
    # Then
    np.testing.assert_allclose(ours, np.ravel(ref), rtol=0, atol=1e-8)
    assert ppi.classical_mean_pointestimate(Y) == pytest.approx(Y.mean(), abs=1e-12)


@pytest.mark.parametrize("lam", [0.0, 0.3, 1.0])
def test_ppi_fixed_lambda_matches_ppi_py(data, lam):
    # Given
    Y, Yhat, Yhat_unlabeled = data
    # When
    ours_ci = ppi.ppi_mean_ci(Y, Yhat, Yhat_unlabeled, alpha=0.1, lam=lam)
    ours_pt = ppi.ppi_mean_pointestimate(Y, Yhat, Yhat_unlabeled, lam=lam)
    ref_ci = _ppi_py().ppi_mean_ci(Y, Yhat, Yhat_unlabeled, alpha=0.1, lam=lam)
    ref_pt = _ppi_py().ppi_mean_pointestimate(Y, Yhat, Yhat_unlabeled, lam=lam)
    # Then
    np.testing.assert_allclose(ours_ci, np.ravel(ref_ci), rtol=0, atol=1e-8)
    assert ours_pt == pytest.approx(float(np.squeeze(ref_pt)), abs=1e-8)


@pytest.mark.parametrize("alpha", [0.05, 0.1])
def test_ppipp_matches_ppi_py_power_tuning(data, alpha):
    # Given: ppi_py tunes lambda itself when lam=None
    Y, Yhat, Yhat_unlabeled = data
    # When
    ours_ci = ppi.ppipp_mean_ci(Y, Yhat, Yhat_unlabeled, alpha=alpha)
    ours_pt = ppi.ppipp_mean_pointestimate(Y, Yhat, Yhat_unlabeled)
    ref_ci = _ppi_py().ppi_mean_ci(Y, Yhat, Yhat_unlabeled, alpha=alpha)
    ref_pt = _ppi_py().ppi_mean_pointestimate(Y, Yhat, Yhat_unlabeled)
    # Then
    np.testing.assert_allclose(ours_ci, np.ravel(ref_ci), rtol=0, atol=1e-8)
    assert ours_pt == pytest.approx(float(np.squeeze(ref_pt)), abs=1e-8)


def test_ppi_pointestimate_by_hand():
    # Given: mean(Yhat_unlabeled) = 0.5, mean(Y - Yhat) = (0 + 1 + 0 + 0) / 4 = 0.25
    Y = np.array([1.0, 1.0, 0.0, 1.0])
    Yhat = np.array([1.0, 0.0, 0.0, 1.0])
    Yhat_unlabeled = np.array([1.0, 0.0, 1.0, 0.0])
    # When
    theta = ppi.ppi_mean_pointestimate(Y, Yhat, Yhat_unlabeled, lam=1.0)
    # Then: 0.5 + 0.25
    assert theta == pytest.approx(0.75)


def test_lambda_is_zero_for_constant_judge_and_one_for_perfect_judge():
    # Given
    rng = np.random.default_rng(0)
    Y = (rng.random(300) < 0.5).astype(float)
    # When
    lam_const = ppi.ppi_mean_lam(Y, np.ones(300), np.ones(3000))
    lam_perfect = ppi.ppi_mean_lam(Y, Y, (rng.random(300000) < 0.5).astype(float))
    # Then: a constant judge carries nothing; a perfect one with N >> n gets weight ~1
    assert lam_const == 0.0
    assert lam_perfect == pytest.approx(1.0, abs=0.02)


def test_ppi_rejects_mismatched_pairs():
    # Given / When / Then
    with pytest.raises(ValueError, match="pair up"):
        ppi.ppi_mean_ci(np.ones(5), np.ones(4), np.ones(10))
