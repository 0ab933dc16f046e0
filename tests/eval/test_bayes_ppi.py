"""Bayesian PPI: hand-worked posterior means, Monte Carlo vs exact, a Beta reference."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import beta

from eval import bayes_ppi
from eval.bayes_ppi import BayesConfig

Y = np.array([1.0, 1.0, 0.0, 1.0])
Yhat = np.array([1.0, 0.0, 0.0, 1.0])
Yhat_unlabeled = np.array([1.0, 1.0, 1.0, 0.0])


def test_chain_rule_posterior_mean_by_hand():
    # Given: prior mass 1. A-counts over all 8 items: a=0: 3, a=1: 5 -> E[p] = (3.5, 5.5) / 9.
    # Beta prior centre mu = (3 + 1/2) / (4 + 1) = 0.7, mass 1 -> Beta(0.7, 0.3).
    # Level 0 has Y = (1, 0) -> E[r0] = 1.7 / 3; level 1 has Y = (1, 1) -> E[r1] = 2.7 / 3.
    # theta = 3.5/9 * 1.7/3 + 5.5/9 * 0.9 = 104/135
    # When
    theta = bayes_ppi.bayes_chain_mean_pointestimate(Y, Yhat, Yhat_unlabeled, BayesConfig(prior_mass=1.0))
    # Then
    assert theta == pytest.approx(104 / 135, abs=1e-12)


def test_difference_posterior_mean_by_hand():
    # Given: prior mass 1. Unlabelled A-counts (1, 3) + 1/2 each -> E[A] = 3.5 / 5 = 0.7.
    # D = Y - A = (0, 1, 0, 0) on support (-1, 0, 1) -> Dir(1/3, 10/3, 4/3) -> E[D] = 1 / 5.
    # theta = 0.7 + 0.2 = 0.9
    # When
    theta = bayes_ppi.bayes_diff_mean_pointestimate(Y, Yhat, Yhat_unlabeled, BayesConfig(prior_mass=1.0))
    # Then
    assert theta == pytest.approx(0.9, abs=1e-12)


@pytest.mark.parametrize("method", ["diff", "chain"])
def test_monte_carlo_draws_agree_with_exact_posterior_mean(method):
    # Given
    rng = np.random.default_rng(1)
    Y = (rng.random(150) < 0.7).astype(float)
    Yhat = np.where(rng.random(150) < 0.85, Y, 1 - Y)
    Yhat_unlabeled = (rng.random(2000) < 0.65).astype(float)
    config = BayesConfig(n_draws=20000, seed=3)
    # When
    draws = getattr(bayes_ppi, f"bayes_{method}_mean_draws")(Y, Yhat, Yhat_unlabeled, config)
    exact = getattr(bayes_ppi, f"bayes_{method}_mean_pointestimate")(Y, Yhat, Yhat_unlabeled, config)
    # Then: the Monte Carlo mean is within 4 standard errors of the exact posterior mean
    assert abs(draws.mean() - exact) < 4 * draws.std() / np.sqrt(draws.shape[0])


def test_chain_rule_with_constant_judge_is_the_beta_posterior():
    # Given: a judge that always says 1 is a single stratum, so
    # theta ~ Beta(mu + ones, (1 - mu) + zeros) with mu = (ones + 1/2) / (n + 1)
    rng = np.random.default_rng(2)
    Y = (rng.random(80) < 0.6).astype(float)
    config = BayesConfig(prior_mass=1.0, n_draws=40000)
    # When
    lo, hi = bayes_ppi.bayes_chain_mean_ci(Y, np.ones(80), np.ones(500), alpha=0.1, config=config)
    # Then
    mu = (Y.sum() + 0.5) / 81
    ref = beta(mu + Y.sum(), 1 - mu + 80 - Y.sum()).ppf([0.05, 0.95])
    np.testing.assert_allclose([lo, hi], ref, atol=0.004)


def test_graded_judge_is_binned_into_at_most_max_levels():
    # Given
    rng = np.random.default_rng(0)
    scores, scores_u = rng.random(50), rng.random(400)
    # When
    levels, k, k_u = bayes_ppi.discretize(scores, scores_u, max_levels=5)
    # Then: 5 equal-mass bins (90 of the 450 scores each), each level inside its bin
    assert levels.shape == (5,)
    np.testing.assert_array_equal(np.bincount(np.concatenate([k, k_u])), [90] * 5)
    for j in range(5):
        inside = np.concatenate([scores[k == j], scores_u[k_u == j]])
        assert inside.min() <= levels[j] <= inside.max()
    assert np.all(np.diff(levels) > 0)


def test_bayes_rejects_non_binary_labels():
    # Given / When / Then
    with pytest.raises(ValueError, match="binary"):
        bayes_ppi.bayes_chain_mean_ci(np.array([0.5, 1.0]), np.ones(2), np.ones(3))
