"""One entry point over every mean estimator: pick a :class:`Method`, get an :class:`Estimate`.

The CLI (``rag eval ppi``), the report and the simulations all go through :func:`estimate`, so
a method name means the same thing everywhere. The estimators themselves live in
:mod:`eval.ppi` (classical, PPI, PPI++; ``ppi_py`` underneath) and :mod:`eval.bayes_ppi`
(difference and chain-rule Bayesian PPI).

The *effective number of human labels* of an interval of width w is the number of human labels
the classical interval would need for the same width; widths scale as 1/√n, so

    n_eff = n · (w_classical / w)².

Example:
    >>> import numpy as np
    >>> Y = np.array([1, 0, 1, 1, 0, 1, 1, 1, 0, 1] * 3, dtype=float)
    >>> est = estimate(Method.CLASSICAL, Y, Y, np.ones(100))
    >>> round(est.estimate, 3)
    0.7
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from eval import bayes_ppi, ppi
from eval.bayes_ppi import BayesConfig
from eval.qa_choices import Method  # the names live with the other CLI choices (no numpy at `rag --help`)

__all__ = ["Method", "Estimate", "estimate", "estimate_all", "effective_labels", "BINARY_METHODS"]


#: Methods whose model needs human labels in {0, 1}.
BINARY_METHODS = frozenset({Method.BAYES_DIFF, Method.BAYES_CHAIN})


@dataclass(frozen=True)
class Estimate:
    """A point estimate of the mean human label with its (1 − α) interval.

    Attributes:
        method: the estimator that produced it.
        estimate: point estimate of θ = E[Y].
        lower: lower end of the confidence (or, for Bayesian methods, credible) interval.
        upper: upper end.
        n: number of human labels used.
        N: number of judge-only (unlabelled) items used; 0 for the classical method.
    """

    method: Method
    estimate: float
    lower: float
    upper: float
    n: int
    N: int

    @property
    def width(self) -> float:
        return self.upper - self.lower

    def to_dict(self) -> dict[str, float]:
        """The ``{estimate, lower, upper}`` object printed by ``rag eval ppi --json``."""
        return {"estimate": self.estimate, "lower": self.lower, "upper": self.upper}


def estimate(
    method: Method,
    Y: np.ndarray,
    Yhat: np.ndarray,
    Yhat_unlabeled: np.ndarray,
    alpha: float = 0.1,
    bayes: BayesConfig = BayesConfig(),
) -> Estimate:
    """Run one estimator.

    Args:
        method: which estimator.
        Y: human labels, shape (n,); in {0, 1} for the Bayesian methods.
        Yhat: judge scores on the labelled items, shape (n,).
        Yhat_unlabeled: judge scores on the unlabelled items, shape (N,).
        alpha: error level; intervals target coverage 1 − α.
        bayes: priors and Monte Carlo settings of the Bayesian methods.

    Returns:
        The :class:`Estimate`.
    """
    method = Method(method)
    n, N = int(np.shape(Y)[0]), int(np.shape(Yhat_unlabeled)[0])
    if method is Method.CLASSICAL:
        point, (lo, hi), N = ppi.classical_mean_pointestimate(Y), ppi.classical_mean_ci(Y, alpha), 0
    elif method is Method.PPI:
        point = ppi.ppi_mean_pointestimate(Y, Yhat, Yhat_unlabeled, lam=1.0)
        lo, hi = ppi.ppi_mean_ci(Y, Yhat, Yhat_unlabeled, alpha=alpha, lam=1.0)
    elif method is Method.PPIPP:
        lam = ppi.ppi_mean_lam(Y, Yhat, Yhat_unlabeled)
        point = ppi.ppi_mean_pointestimate(Y, Yhat, Yhat_unlabeled, lam=lam)
        lo, hi = ppi.ppi_mean_ci(Y, Yhat, Yhat_unlabeled, alpha=alpha, lam=lam)
    elif method is Method.BAYES_DIFF:
        point = bayes_ppi.bayes_diff_mean_pointestimate(Y, Yhat, Yhat_unlabeled, bayes)
        lo, hi = bayes_ppi.bayes_diff_mean_ci(Y, Yhat, Yhat_unlabeled, alpha, bayes)
    else:
        point = bayes_ppi.bayes_chain_mean_pointestimate(Y, Yhat, Yhat_unlabeled, bayes)
        lo, hi = bayes_ppi.bayes_chain_mean_ci(Y, Yhat, Yhat_unlabeled, alpha, bayes)
    return Estimate(method, point, lo, hi, n, N)


def estimate_all(
    Y: np.ndarray,
    Yhat: np.ndarray,
    Yhat_unlabeled: np.ndarray,
    alpha: float = 0.1,
    methods: tuple[Method, ...] = tuple(Method),
    bayes: BayesConfig = BayesConfig(),
) -> dict[Method, Estimate]:
    """Run several estimators on the same data, keyed by method (in the order given)."""
    return {m: estimate(m, Y, Yhat, Yhat_unlabeled, alpha, bayes) for m in methods}


def effective_labels(est: Estimate, classical: Estimate) -> float | None:
    """Human labels the classical interval would need to be as narrow: n · (w_classical / w)².

    ``None`` (undefined) when either interval has zero width, which binary labels never give
    (:func:`eval.ppi.classical_mean_ci` is exact where the normal approximation degenerates);
    an infinite count would claim the judge is worth unlimited labels.
    """
    if est.width <= 0 or classical.width <= 0:
        return None
    return classical.n * (classical.width / est.width) ** 2
