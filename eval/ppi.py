"""Prediction-powered inference for a mean: classical, PPI (λ = 1) and PPI++ (power-tuned λ).

We want θ = E[Y], the mean of a human label (here: "is this answer correct?", Y ∈ {0, 1}). We
have n human labels ``Y`` with the judge's scores ``Yhat`` on the same items, and N judge scores
``Yhat_unlabeled`` on items nobody labelled. For any λ the estimate

    θ̂_λ = λ · mean(Yhat_unlabeled) + mean(Y − λ · Yhat)

is unbiased, because the second term *rectifies* the judge's bias on the labelled items. Its
variance is estimated as

    σ̂²_λ = λ² · Var(Yhat_unlabeled) / N + Var(Y − λ · Yhat) / n,

and the (1 − α) interval is θ̂_λ ± z_{1−α/2} · σ̂_λ. λ = 0 is the classical interval (human labels
only), λ = 1 is PPI (Angelopoulos et al. 2023), and PPI++ picks the λ minimising σ̂²_λ:

    λ* = Cov(Y, Yhat) / ((1 + n/N) · Var(Yhat ∪ Yhat_unlabeled)),  clipped to [0, 1],

so that a useless judge (λ* ≈ 0) costs nothing and a good one can only help (Angelopoulos,
Duchi, Zrnic 2023, power tuning specialised to the mean).

The point estimates and intervals are ``ppi_py``'s; this module adds only :func:`ppi_mean_lam`
(the closed-form λ* for the mean, which ``ppi_py`` keeps private) and input checks. ``ppi_py`` is
imported lazily because importing it loads numba/statsmodels/sklearn and calls
``warnings.simplefilter("ignore")``; :func:`_ppi_py` undoes that global side effect.

References:
    Angelopoulos, Bates, Fannjiang, Jordan, Zrnic. Prediction-powered inference. Science 382,
    2023 (arXiv:2301.09633) (mean estimation).
    Angelopoulos, Duchi, Zrnic. PPI++: Efficient prediction-powered inference. arXiv:2311.01453,
    2023 (power tuning).

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> Y = rng.binomial(1, 0.7, 200).astype(float)
    >>> Yhat = np.where(rng.random(200) < 0.9, Y, 1 - Y)
    >>> Yhat_unlabeled = rng.binomial(1, 0.7, 5000).astype(float)
    >>> lo, hi = ppipp_mean_ci(Y, Yhat, Yhat_unlabeled, alpha=0.1)
    >>> bool(lo < hi)
    True
"""

from __future__ import annotations

import warnings
from types import ModuleType

import numpy as np

__all__ = [
    "clopper_pearson_ci",
    "classical_mean_ci",
    "classical_mean_pointestimate",
    "ppi_mean_ci",
    "ppi_mean_pointestimate",
    "ppi_mean_lam",
    "ppipp_mean_ci",
    "ppipp_mean_pointestimate",
]


def _ppi_py() -> ModuleType:
    """``import ppi_py`` without letting it silence every warning of the process."""
    with warnings.catch_warnings():  # restores the filters ppi_py resets at import
        import ppi_py
    return ppi_py


def _as_1d(name: str, x: np.ndarray, min_len: int = 1) -> np.ndarray:
    arr = np.asarray(x, dtype=float)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.shape[0] < min_len:
        raise ValueError(f"{name} needs at least {min_len} values, got {arr.shape[0]}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def _check(Y: np.ndarray, Yhat: np.ndarray, Yhat_unlabeled: np.ndarray):
    Y, Yhat = _as_1d("Y", Y, 2), _as_1d("Yhat", Yhat, 2)
    Yhat_unlabeled = _as_1d("Yhat_unlabeled", Yhat_unlabeled, 1)
    if Y.shape != Yhat.shape:
        raise ValueError(f"Y and Yhat must pair up item by item: {Y.shape[0]} vs {Yhat.shape[0]} values")
    return Y, Yhat, Yhat_unlabeled


def classical_mean_pointestimate(Y: np.ndarray) -> float:
    """The sample mean of the human labels, θ̂ = (1/n) Σ Y_i."""
    return float(_as_1d("Y", Y, 1).mean())


#: Fewest labels of each value (0 and 1) for the normal approximation to a binary mean; below
#: it the interval is the exact binomial one (the textbook np ≥ 5, n(1−p) ≥ 5 rule).
MIN_BINARY_COUNT = 5


def is_binary(Y: np.ndarray) -> bool:
    """Whether every label is 0 or 1."""
    return bool(np.all((Y == 0) | (Y == 1)))


def clopper_pearson_ci(Y: np.ndarray, alpha: float = 0.1) -> tuple[float, float]:
    """Exact binomial (Clopper–Pearson) interval for the mean of binary labels ``Y`` (n,).

    Always inside [0, 1], never of zero width for finite n, and conservative: coverage ≥ 1 − α
    for every θ. For n successes of n it is [(α/2)^{1/n}, 1].

    References:
        Clopper, Pearson. "The use of confidence or fiducial limits illustrated in the case of the
        binomial." Biometrika 26(4), 1934.
    """
    from scipy.stats import binomtest

    Y = _as_1d("Y", Y, 1)
    ci = binomtest(int(Y.sum()), Y.shape[0]).proportion_ci(confidence_level=1 - alpha, method="exact")
    return float(ci.low), float(ci.high)


def classical_mean_ci(Y: np.ndarray, alpha: float = 0.1) -> tuple[float, float]:
    """Interval for E[Y] from human labels only.

    The normal-approximation (CLT) interval Ȳ ± z_{1−α/2} · σ̂/√n, as ``ppi_py``, except for
    binary labels with fewer than :data:`MIN_BINARY_COUNT` of either value: there the CLT
    interval is known to fail (30 labels all 1 give [1, 1], width 0; near the boundary it leaves
    [0, 1]; Brown, Cai, DasGupta, Statistical Science 2001), and the exact Clopper–Pearson
    interval (:func:`clopper_pearson_ci`) is returned instead. A binary mean's interval is
    always intersected with [0, 1] (θ lies there, so coverage is unchanged).

    Args:
        Y: human labels, shape (n,).
        alpha: error level; the interval targets coverage 1 − α.

    Returns:
        ``(lower, upper)``; equal to ``ppi_py.classical_mean_ci(Y, alpha=alpha)`` whenever that
        is a valid interval.
    """
    Y = _as_1d("Y", Y, 2)
    if is_binary(Y):
        ones = int(Y.sum())
        if min(ones, Y.shape[0] - ones) < MIN_BINARY_COUNT:
            return clopper_pearson_ci(Y, alpha)
    lower, upper = _ppi_py().classical_mean_ci(Y, alpha=alpha)
    return clip_to_label_range(Y, float(lower), float(upper))


def clip_to_label_range(Y: np.ndarray, lower: float, upper: float) -> tuple[float, float]:
    """``[lower, upper] ∩ [0, 1]`` when every label lies in [0, 1] (then so does θ = E[Y]), else unchanged.

    Intersecting an interval with a set known to hold θ never lowers its coverage.
    """
    if np.all((Y >= 0) & (Y <= 1)):
        return max(lower, 0.0), min(upper, 1.0)
    return lower, upper


def ppi_mean_lam(Y: np.ndarray, Yhat: np.ndarray, Yhat_unlabeled: np.ndarray, clip: bool = True) -> float:
    """Power-tuned λ* for the mean (PPI++, Angelopoulos, Duchi, Zrnic 2023).

    λ* = Cov(Y, Yhat) / ((1 + n/N) · Var(Yhat ∪ Yhat_unlabeled)), the minimiser of the
    estimated variance σ̂²_λ. Covariance uses the 1/n normalisation and the variance the pooled
    n + N judge scores with 1/(n+N−1), as ``ppi_py`` does, so results match it exactly. A judge
    with constant output carries no information: λ* = 0.

    Args:
        Y: human labels, shape (n,).
        Yhat: judge scores on the labelled items, shape (n,).
        Yhat_unlabeled: judge scores on the unlabelled items, shape (N,).
        clip: clip λ* to [0, 1] (the default, as in ``ppi_py``'s mean estimators).

    Returns:
        The scalar λ*.
    """
    Y, Yhat, Yhat_unlabeled = _check(Y, Yhat, Yhat_unlabeled)
    n, N = Y.shape[0], Yhat_unlabeled.shape[0]
    cov = np.mean((Y - Y.mean()) * (Yhat - Yhat.mean()))
    var = np.var(np.concatenate([Yhat, Yhat_unlabeled]), ddof=1)
    if var <= 0.0:
        return 0.0
    lam = cov / ((1.0 + n / N) * var)
    return float(np.clip(lam, 0.0, 1.0)) if clip else float(lam)


def ppi_mean_pointestimate(
    Y: np.ndarray, Yhat: np.ndarray, Yhat_unlabeled: np.ndarray, lam: float = 1.0
) -> float:
    """θ̂_λ = λ · mean(Yhat_unlabeled) + mean(Y − λ · Yhat); λ = 1 is plain PPI.

    Args:
        Y: human labels, shape (n,).
        Yhat: judge scores on the labelled items, shape (n,).
        Yhat_unlabeled: judge scores on the unlabelled items, shape (N,).
        lam: weight of the judge; 1 for PPI, 0 for the classical mean.

    Returns:
        The point estimate, equal to ``ppi_py.ppi_mean_pointestimate(..., lam=lam)`` (projected
        onto [0, 1] when every label lies there).
    """
    Y, Yhat, Yhat_unlabeled = _check(Y, Yhat, Yhat_unlabeled)
    theta = float(np.squeeze(_ppi_py().ppi_mean_pointestimate(Y, Yhat, Yhat_unlabeled, lam=lam)))
    # Labels in [0, 1] put θ there: projecting the estimate onto [0, 1] can only bring it closer.
    return min(max(theta, 0.0), 1.0) if np.all((Y >= 0) & (Y <= 1)) else theta


def ppi_mean_ci(
    Y: np.ndarray, Yhat: np.ndarray, Yhat_unlabeled: np.ndarray, alpha: float = 0.1, lam: float = 1.0
) -> tuple[float, float]:
    """Prediction-powered interval θ̂_λ ± z_{1−α/2} · σ̂_λ (Angelopoulos et al. 2023, Alg. 1).

    Args:
        Y: human labels, shape (n,).
        Yhat: judge scores on the labelled items, shape (n,).
        Yhat_unlabeled: judge scores on the unlabelled items, shape (N,).
        alpha: error level; the interval targets coverage 1 − α.
        lam: weight of the judge; 1 for PPI.

    Returns:
        ``(lower, upper)``, equal to ``ppi_py.ppi_mean_ci(..., alpha=alpha, lam=lam)`` intersected
        with [0, 1] when every label lies there; ``lam = 0`` and a zero-width interval of binary
        labels give :func:`classical_mean_ci`.
    """
    Y, Yhat, Yhat_unlabeled = _check(Y, Yhat, Yhat_unlabeled)
    if lam == 0.0:
        return classical_mean_ci(Y, alpha)  # λ = 0 is the classical interval (exact where the CLT fails)
    lower, upper = _ppi_py().ppi_mean_ci(Y, Yhat, Yhat_unlabeled, alpha=alpha, lam=lam)
    lower, upper = clip_to_label_range(Y, float(np.squeeze(lower)), float(np.squeeze(upper)))
    if upper <= lower and is_binary(Y):
        # A constant rectifier and a constant judge leave no variance to estimate: the interval
        # would be a point. Fall back to the classical interval, valid whatever the judge.
        return classical_mean_ci(Y, alpha)
    return lower, upper


def ppipp_mean_pointestimate(Y: np.ndarray, Yhat: np.ndarray, Yhat_unlabeled: np.ndarray) -> float:
    """PPI++ point estimate θ̂_{λ*} with λ* from :func:`ppi_mean_lam`."""
    return ppi_mean_pointestimate(Y, Yhat, Yhat_unlabeled, lam=ppi_mean_lam(Y, Yhat, Yhat_unlabeled))


def ppipp_mean_ci(
    Y: np.ndarray, Yhat: np.ndarray, Yhat_unlabeled: np.ndarray, alpha: float = 0.1
) -> tuple[float, float]:
    """PPI++ interval: :func:`ppi_mean_ci` at the power-tuned λ* (never much wider than classical).

    Returns:
        ``(lower, upper)``, equal to ``ppi_py.ppi_mean_ci(..., alpha=alpha)`` (its ``lam=None``).
    """
    return ppi_mean_ci(Y, Yhat, Yhat_unlabeled, alpha=alpha, lam=ppi_mean_lam(Y, Yhat, Yhat_unlabeled))
