"""Fusing ranked lists: reciprocal rank fusion and convex combination of normalised scores.

Pure functions over arrays; the hybrid retriever composes them with two retrievers.

References:
    Cormack, Clarke, Büttcher. "Reciprocal Rank Fusion outperforms Condorcet and individual
    Rank Learning Methods." SIGIR 2009. ``k = 60`` is the constant from that paper: it damps the
    weight of the very first ranks so that one list's top hit cannot dominate the fusion.
    Bruch, Gai, Ingber. "An Analysis of Fusion Functions for Hybrid Retrieval." ACM TOIS 2023 —
    convex combination of normalised scores beats RRF when its weight is tuned on in-domain data.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

Normalization = Literal["minmax", "zscore"]


def rrf(ranks: Sequence[np.ndarray], k: int = 60) -> np.ndarray:
    """Σ_i 1 / (k + rank_i) over lists; ``ranks[i]`` holds 1-based ranks (``inf`` where absent)."""
    return sum(1.0 / (k + np.asarray(r, dtype=np.float64)) for r in ranks)


def min_max(scores: np.ndarray) -> np.ndarray:
    """Scale to [0, 1]; a constant list maps to all zeros."""
    lo, hi = float(np.min(scores)), float(np.max(scores))
    return (scores - lo) / (hi - lo) if hi > lo else np.zeros_like(scores, dtype=np.float64)


def z_score(scores: np.ndarray) -> np.ndarray:
    """Centre and scale to unit variance; a constant list maps to all zeros."""
    sd = float(np.std(scores))
    return (scores - np.mean(scores)) / sd if sd > 0 else np.zeros_like(scores, dtype=np.float64)


def convex(sparse: np.ndarray, dense: np.ndarray, alpha: float, norm: Normalization = "minmax") -> np.ndarray:
    """``alpha · N(dense) + (1 - alpha) · N(sparse)`` over the same candidates, ``N`` a normaliser."""
    f = min_max if norm == "minmax" else z_score
    return alpha * f(dense) + (1.0 - alpha) * f(sparse)


def ranks_of(scores: np.ndarray) -> np.ndarray:
    """1-based rank of each entry when sorted by descending score (ties by position)."""
    order = np.lexsort((np.arange(scores.size), -scores))
    ranks = np.empty(scores.size, dtype=np.float64)
    ranks[order] = np.arange(1, scores.size + 1)
    return ranks
