"""Seeded simulations of the mean estimators: coverage, interval width, efficiency.

Each trial draws n + N items with a binary "correct" label Y ~ Bernoulli(theta), gives every
item a judge output, hides the labels of all but the first n, and runs every estimator of
:mod:`eval.estimators`. Over many trials we measure the fraction of intervals that contain theta
(coverage; valid methods reach ≥ 1 − α) and the mean interval width (efficiency).

Judges (:class:`JudgeSpec`) are either binary yes/no raters with a true-positive rate ``tpr`` and
a false-positive rate ``fpr`` (bias = tpr·θ + fpr·(1−θ) − θ), or graded raters that output
sigmoid(strength · (2Y − 1) + shift + ε), ε ~ N(0, 1), a continuous score in (0, 1).

Run as a script to reproduce the figures in ``docs/benchmarks.md``::

    python -m eval.benchmarks.ppi_simulation --trials 1000

Example:
    >>> res = simulate(SimulationConfig(trials=20), JudgeSpec("good", tpr=0.9, fpr=0.1))
    >>> sorted(res) == sorted(m.value for m in Method)
    True
"""

from __future__ import annotations

import argparse
import zlib
from dataclasses import dataclass, replace

import numpy as np

from eval.bayes_ppi import BayesConfig
from eval.estimators import Method, estimate_all


@dataclass(frozen=True)
class JudgeSpec:
    """A simulated judge.

    Attributes:
        name: label used in tables.
        tpr: binary judges: P(judge says correct | correct).
        fpr: binary judges: P(judge says correct | wrong).
        strength: graded judges (``graded=True``): separation of the two classes in logit units.
        shift: graded judges: additive logit bias (positive = lenient).
        graded: continuous scores instead of yes/no.
    """

    name: str
    tpr: float = 0.9
    fpr: float = 0.1
    strength: float = 2.0
    shift: float = 0.0
    graded: bool = False

    def sample(self, Y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Judge outputs for labels ``Y`` (shape (m,)), shape (m,)."""
        if self.graded:
            logit = self.strength * (2 * Y - 1) + self.shift + rng.standard_normal(Y.shape[0])
            return 1.0 / (1.0 + np.exp(-logit))
        p_yes = np.where(Y == 1, self.tpr, self.fpr)
        return (rng.random(Y.shape[0]) < p_yes).astype(float)

    def agreement(self, theta: float) -> float:
        """P(judge verdict == Y) for binary judges (graded: score thresholded at 1/2)."""
        if self.graded:
            from scipy.stats import norm

            return theta * norm.cdf(self.strength + self.shift) + (1 - theta) * norm.cdf(self.strength - self.shift)
        return theta * self.tpr + (1 - theta) * (1 - self.fpr)

    def correlation(self, theta: float, size: int = 200_000, seed: int = 0) -> float:
        """Pearson correlation ρ of judge output and Y (Monte Carlo, ``size`` seeded draws).

        ρ, not agreement, sets the gain: for N ≫ n, width(PPI++) / width(classical) ≈ √(1 − ρ²).
        """
        rng = np.random.default_rng(seed)
        Y = (rng.random(size) < theta).astype(float)
        return float(np.corrcoef(Y, self.sample(Y, rng))[0, 1])


@dataclass(frozen=True)
class SimulationConfig:
    """Sizes and seeds of a simulation.

    Attributes:
        theta: true mean of Y (the accuracy being estimated); 0.7 is a typical QA accuracy.
        n: human-labelled items per trial.
        N: judge-only items per trial.
        trials: independent repetitions; ≥ 1,000 makes the coverage's Monte Carlo error ≈ 0.01.
        alpha: error level of the intervals.
        seed: seed of the whole run.
        bayes: settings of the Bayesian estimators.
    """

    theta: float = 0.7
    n: int = 200
    N: int = 5000
    trials: int = 1000
    alpha: float = 0.1
    seed: int = 0
    bayes: BayesConfig = BayesConfig()


#: Judges of varying quality and bias used by the validity tests and the benchmark.
JUDGES = (
    JudgeSpec("accurate (95%)", tpr=0.95, fpr=0.05),
    JudgeSpec("85% symmetric", tpr=0.85, fpr=0.15),
    JudgeSpec("lenient (tpr .97, fpr .40)", tpr=0.97, fpr=0.40),
    JudgeSpec("harsh (tpr .70, fpr .03)", tpr=0.70, fpr=0.03),
    JudgeSpec("useless (coin)", tpr=0.5, fpr=0.5),
    JudgeSpec("graded, lenient", strength=2.0, shift=1.0, graded=True),
)


def simulate(config: SimulationConfig, judge: JudgeSpec) -> dict[str, dict[str, float]]:
    """Coverage and mean width of every estimator for one judge.

    Returns:
        ``{method: {"coverage", "width", "bias"}}`` averaged over ``config.trials``.
    """
    rng = np.random.default_rng([config.seed, zlib.crc32(judge.name.encode())])
    covered = {m: 0 for m in Method}
    width = {m: 0.0 for m in Method}
    error = {m: 0.0 for m in Method}
    for t in range(config.trials):
        Y_all = (rng.random(config.n + config.N) < config.theta).astype(float)  # (n + N,)
        Yhat_all = judge.sample(Y_all, rng)  # (n + N,)
        Y, Yhat, Yhat_unlabeled = Y_all[: config.n], Yhat_all[: config.n], Yhat_all[config.n :]
        bayes = replace(config.bayes, seed=t)
        for m, est in estimate_all(Y, Yhat, Yhat_unlabeled, config.alpha, bayes=bayes).items():
            covered[m] += est.lower <= config.theta <= est.upper
            width[m] += est.width
            error[m] += est.estimate - config.theta
    T = config.trials
    return {m.value: {"coverage": covered[m] / T, "width": width[m] / T, "bias": error[m] / T} for m in Method}


def _table(config: SimulationConfig, judges: tuple[JudgeSpec, ...]) -> str:
    head = "| judge | agreement | ρ | " + " | ".join(f"{m.value} cov / width" for m in Method)
    head += " | PPI++ vs classical | bayes-chain vs classical |"
    rows = [head, "|" + "---|" * (len(Method) + 5)]
    for judge in judges:
        res = simulate(config, judge)
        cells = " | ".join(f"{res[m.value]['coverage']:.3f} / {res[m.value]['width']:.4f}" for m in Method)
        w0 = res[Method.CLASSICAL.value]["width"]
        gain = [1 - res[m.value]["width"] / w0 for m in (Method.PPIPP, Method.BAYES_CHAIN)]
        quality = f"{judge.agreement(config.theta):.3f} | {judge.correlation(config.theta):.2f}"
        rows.append(f"| {judge.name} | {quality} | {cells} | "
                    f"{gain[0]:+.1%} narrower | {gain[1]:+.1%} narrower |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    """Print the Markdown tables of ``docs/benchmarks.md``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--N", type=int, default=5000)
    parser.add_argument("--theta", type=float, nargs="+", default=[0.5, 0.7])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for theta in args.theta:
        config = SimulationConfig(theta=theta, n=args.n, N=args.N, trials=args.trials, seed=args.seed)
        print(f"\ntheta = {theta}, n = {args.n}, N = {args.N}, trials = {args.trials}, alpha = {config.alpha}\n")
        print(_table(config, JUDGES))


if __name__ == "__main__":
    main()
