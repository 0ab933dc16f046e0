"""Per-stratum estimates (question type, topic, …) and a stratified combination.

Accuracy often differs between kinds of questions, and so does a judge's bias. Running each
estimator inside each stratum s (with its own human labels and judge-only items) gives θ̂_s and
an interval per stratum; the overall mean is then the stratum-size-weighted combination

    θ̂ = Σ_s w_s · θ̂_s,  w_s = (n_s + N_s) / (n + N),  σ̂² = Σ_s w_s² · σ̂_s²,

with σ̂_s recovered from each stratum's normal interval (valid for the CLT-based methods; the
Bayesian intervals are combined the same way as a normal approximation). This is the
"stratified PPI" of Fisch et al. (2024) with a fixed (proportional) allocation of labels.

References:
    Fisch, Maynez, Hofer, Dhingra, Globerson, Cohen. Stratified prediction-powered inference for
    hybrid language model evaluation. arXiv:2406.04291, 2024.

Example:
    >>> question_type("Who wrote Hamlet?"), question_type("In which year did it open?")
    ('who', 'which')
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
from scipy.stats import norm

from eval.estimators import Estimate, Method, estimate_all
from eval.labels import MIN_LABELS

#: Question words recognised by :func:`question_type`, in the order they are looked for.
QUESTION_WORDS = ("how many", "how much", "what", "which", "who", "whom", "whose", "when", "where", "why", "how")


def question_type(question: str) -> str:
    """The first question word of ``question`` ("how many" before "how"), or ``"other"``."""
    text = " " + re.sub(r"[^a-z ]", " ", question.lower()) + " "
    hits = [(text.find(f" {w} "), -len(w), w) for w in QUESTION_WORDS if f" {w} " in text]
    if not hits:
        return "other"
    word = min(hits)[2]
    return {"whom": "who", "whose": "who"}.get(word, word)


def stratified_estimates(
    strata: Sequence[str],
    strata_unlabeled: Sequence[str],
    Y: np.ndarray,
    Yhat: np.ndarray,
    Yhat_unlabeled: np.ndarray,
    alpha: float = 0.1,
    methods: tuple[Method, ...] = tuple(Method),
    min_labels: int = MIN_LABELS,
) -> dict[str, dict[Method, Estimate]]:
    """Every method inside every stratum with at least ``min_labels`` human labels, plus ``"(stratified)"``.

    Args:
        strata: stratum of each labelled item, length n.
        strata_unlabeled: stratum of each judge-only item, length N.
        Y, Yhat, Yhat_unlabeled: as in :func:`eval.estimators.estimate`.
        alpha: error level.
        methods: estimators to run.
        min_labels: strata with fewer human labels (or no judge-only items) are left out and
            folded into an ``"other strata"`` pool so that every item still counts.

    Returns:
        ``{stratum: {method: Estimate}}``; the ``"(stratified)"`` entry combines the strata as in
        the module docstring.
    """
    strata = np.asarray(strata, dtype=object)
    strata_unlabeled = np.asarray(strata_unlabeled, dtype=object)

    def big_enough(s: str, lab: np.ndarray, unl: np.ndarray) -> bool:
        return np.sum(lab == s) >= min_labels and bool(np.any(unl == s))

    keep = {s for s in set(strata) if big_enough(s, strata, strata_unlabeled)}
    rest = "other strata"
    strata = np.array([s if s in keep else rest for s in strata], dtype=object)
    strata_unlabeled = np.array([s if s in keep else rest for s in strata_unlabeled], dtype=object)
    names = sorted(keep | ({rest} if big_enough(rest, strata, strata_unlabeled) else set()))
    out = {s: estimate_all(Y[strata == s], Yhat[strata == s], Yhat_unlabeled[strata_unlabeled == s], alpha, methods)
           for s in names}
    covered = set(strata) | set(strata_unlabeled)
    if len(names) < 2 or not covered <= set(names):
        return out  # some items fall in no estimable stratum: no stratified combination
    total = len(Y) + len(Yhat_unlabeled)
    w = np.array([(np.sum(strata == s) + np.sum(strata_unlabeled == s)) / total for s in names])  # (S,)
    z = norm.ppf(1 - alpha / 2)
    combined = {}
    for m in methods:
        theta = np.array([out[s][m].estimate for s in names])  # (S,)
        sd = np.array([out[s][m].width / (2 * z) for s in names])  # (S,)
        point, half = float(w @ theta), float(z * np.sqrt(np.sum((w * sd) ** 2)))
        combined[m] = Estimate(m, point, point - half, point + half, len(Y), len(Yhat_unlabeled))
    out["(stratified)"] = combined
    return out
