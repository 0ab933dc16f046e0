"""The report's figures as PNG bytes: intervals side by side, width vs human labels, judge calibration.

Figures are drawn on :class:`matplotlib.figure.Figure` objects directly (no ``pyplot``), so no
global backend or state is touched; each function returns the PNG-encoded image.

Example:
    >>> png = intervals_png({"classical": {"estimate": 0.7, "lower": 0.65, "upper": 0.75}})
    >>> png[:4]
    b'\\x89PNG'
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

#: One colour per method, shared by all figures (matplotlib's tab10).
COLORS = {"classical": "#7f7f7f", "ppi": "#1f77b4", "ppi++": "#d62728", "bayes-diff": "#2ca02c",
          "bayes-chain": "#9467bd"}


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return buf.getvalue()


def _figure(width: float = 6.0, height: float = 3.2):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    return fig, fig.add_subplot()


def intervals_png(estimates: Mapping[str, Mapping[str, float]], title: str = "Accuracy estimates") -> bytes:
    """Horizontal interval per method with its point estimate.

    The interval and the point are drawn separately: a posterior mean may lie outside its central
    credible interval (a posterior piled up at 0 with a long right tail), which error bars cannot show.
    """
    fig, ax = _figure(6.0, 0.5 + 0.45 * len(estimates))
    names = list(estimates)[::-1]
    for y, name in enumerate(names):
        e, color = estimates[name], COLORS.get(name, "black")
        ax.hlines(y, e["lower"], e["upper"], color=color)
        ax.plot([e["lower"], e["upper"]], [y, y], "|", color=color, markersize=10)
        ax.plot(e["estimate"], y, "o", color=color)
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("mean accuracy")
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


def width_vs_n_png(n: Sequence[int], widths: Mapping[str, Sequence[float]]) -> bytes:
    """Mean interval width against the number of human labels, one line per method."""
    fig, ax = _figure()
    for name, w in widths.items():
        ax.plot(n, w, marker="o", label=name, color=COLORS.get(name))
    ax.set_xlabel("human labels (subsampled)")
    ax.set_ylabel("mean interval width")
    ax.set_title("Interval width vs number of human labels")
    ax.grid(alpha=0.3)
    ax.legend()
    return _png(fig)


def calibration_png(mean_score: Sequence[float], frac_correct: Sequence[float], counts: Sequence[int]) -> bytes:
    """Reliability diagram of the judge on the human-labelled items (marker area ∝ items)."""
    fig, ax = _figure(4.2, 4.0)
    ax.plot([0, 1], [0, 1], linestyle="--", color="#999999", label="perfect calibration")
    total = max(sum(counts), 1)
    ax.scatter(mean_score, frac_correct, s=[20 + 600 * c / total for c in counts], color="#1f77b4",
               alpha=0.8, label="judge (binned)")
    ax.plot(mean_score, frac_correct, color="#1f77b4", alpha=0.5)
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("judge score")
    ax.set_ylabel("fraction correct (human)")
    ax.set_title("Judge calibration")
    ax.legend(loc="upper left")
    return _png(fig)
