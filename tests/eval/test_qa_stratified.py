"""Question types and stratified estimates."""

from __future__ import annotations

import numpy as np
import pytest

from eval.estimators import Method, estimate
from eval.stratified import question_type, stratified_estimates


@pytest.mark.parametrize("question, expected", [
    ("How many people live in Paris?", "how many"), ("Whose idea was it?", "who"),
    ("The treaty was signed when?", "when"), ("Name the river.", "other"), ("What year, and where?", "what"),
])
def test_question_type(question, expected):
    # Given / When / Then
    assert question_type(question) == expected


def test_single_stratum_equals_unstratified_and_combination_weights_strata():
    # Given: two strata with different accuracies (0.9 and 0.5), an 85%-accurate judge
    rng = np.random.default_rng(0)
    s_all = np.array(["a"] * 3000 + ["b"] * 1000, dtype=object)
    Y_all = (rng.random(4000) < np.where(s_all == "a", 0.9, 0.5)).astype(float)
    Yhat_all = np.where(rng.random(4000) < 0.85, Y_all, 1 - Y_all)
    lab = np.zeros(4000, bool)
    lab[rng.choice(4000, 400, replace=False)] = True
    # When
    out = stratified_estimates(s_all[lab], s_all[~lab], Y_all[lab], Yhat_all[lab], Yhat_all[~lab],
                               methods=(Method.CLASSICAL, Method.PPIPP))
    # Then: stratum "a" is the plain estimator on its own items ...
    ref = estimate(Method.PPIPP, Y_all[lab & (s_all == "a")], Yhat_all[lab & (s_all == "a")],
                   Yhat_all[~lab & (s_all == "a")])
    assert out["a"][Method.PPIPP] == ref
    # ... and the combination is 3/4 * theta_a + 1/4 * theta_b
    combined = out["(stratified)"][Method.PPIPP]
    expected = 0.75 * out["a"][Method.PPIPP].estimate + 0.25 * out["b"][Method.PPIPP].estimate
    assert combined.estimate == pytest.approx(expected)
    assert combined.lower < 0.8 < combined.upper


def test_small_strata_are_pooled():
    # Given: strata "c" (5 labels) and "d" (29) are below 30, so they are pooled into "other strata"
    rng = np.random.default_rng(1)
    s_lab = np.array(["a"] * 40 + ["c"] * 5 + ["d"] * 29, dtype=object)
    s_unl = np.array(["a"] * 100 + ["c"] * 50 + ["d"] * 50, dtype=object)
    Y = (rng.random(74) < 0.7).astype(float)
    # When
    out = stratified_estimates(s_lab, s_unl, Y, Y, (rng.random(200) < 0.7).astype(float),
                               methods=(Method.CLASSICAL,))
    # Then
    assert set(out) == {"a", "other strata", "(stratified)"}
    assert out["other strata"][Method.CLASSICAL].n == 34
