"""Interpolating the cross-encoder's score with the first stage's, and choosing the weight on dev.

A reranker trained on little data can be worse than the first stage on its own yet still know
something it does not; the standard remedy is a linear interpolation of the two scores over the
reranked list (Lin, Nogueira & Yates, "Pretrained Transformers for Text Ranking: BERT and
Beyond", 2021, arXiv:2010.06467 §3.2.2)::

    s(q, p) = α · mm(CE)(q, p) + (1 − α) · mm(S1)(q, p),   mm(x)_i = (x_i − min x) / (max x − min x)

over the N passages of one query's head (the rerank depth). ``α = 1`` is the cross-encoder
alone, ``α = 0`` the first stage's order. Both score lists are min-max normalised **per query**
before mixing because their scales are unrelated (raw logits vs fused first-stage scores, which
change with the fusion method) and change from query to query; min-max rather than z-score
because it is bounded in [0, 1] whatever N, so α keeps one meaning at every depth, and because it
is the usual normalisation for score fusion (Bruch, Gai & Ingber 2023, "An Analysis of Fusion
Functions for Hybrid Retrieval", arXiv:2210.11934 §4). A constant list carries no ranking
information and normalises to all zeros. Ties of the mixed score keep the first stage's order,
so ``α = 0`` reproduces it exactly.

α is chosen once, at training time, by a grid search over [0, 1] on the *dev* split of the
training queries (:func:`select_weight`) and saved beside the model as ``rerank.json``
(:func:`write_weight`, key ``"weight"``; files written before hold it as ``"alpha"``, still read),
with the first-stage mode and depth it was tuned for; a model without that file (any
sentence-transformers CrossEncoder) runs at α = 1. (The CLI calls α ``--rerank-weight``: ``--alpha``
of ``rag eval`` is the significance level of its intervals.)

Example:
    >>> interpolate(np.array([2.0, 0.0, 1.0]), np.array([4.0, 2.0, 0.0]), 0.5).tolist()
    [1.0, 0.25, 0.25]
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from indexes.errors import InputError

WEIGHT_FILE = "rerank.json"  # beside the cross-encoder's weights; read by CrossEncoderReranker.load
PURE_CE = 1.0  # the weight of a model without WEIGHT_FILE: the cross-encoder alone
GRID = tuple(round(0.05 * i, 2) for i in range(21))  # α = 0, 0.05, …, 1: finer is noise on a ~65-query dev split


def check_weight(alpha: float, name: str = "rerank weight") -> float:
    """``alpha`` as a float in [0, 1], else :class:`InputError` naming ``name``."""
    if not isinstance(alpha, int | float) or not 0.0 <= float(alpha) <= 1.0:
        raise InputError(f"{name} must be a number in [0, 1] (1 = cross-encoder only, 0 = first stage only), got {alpha!r}")
    return float(alpha)


def minmax(x: np.ndarray) -> np.ndarray:
    """``(x − min x) / (max x − min x)`` as float64 (n,); all zeros for a constant or empty ``x``."""
    x = np.asarray(x, dtype=np.float64)
    if x.size == 0:
        return x
    span = float(x.max() - x.min())
    return (x - x.min()) / span if span > 0 else np.zeros_like(x)


def interpolate(ce: np.ndarray, first: np.ndarray, alpha: float) -> np.ndarray:
    """``α·mm(ce) + (1−α)·mm(first)``: float64 (n,) for the same n passages of one query."""
    ce, first = np.asarray(ce, dtype=np.float64), np.asarray(first, dtype=np.float64)
    if ce.shape != first.shape:
        raise ValueError(f"{ce.shape} cross-encoder scores for {first.shape} first-stage scores")
    return alpha * minmax(ce) + (1.0 - alpha) * minmax(first)


def ndcg10(ranked: Sequence[str], relevant: Mapping[str, int]) -> float:
    """nDCG@10 of one ranked list of document ids (pytrec_eval's, ideal over every judged document)."""
    import pytrec_eval

    run = {"q": {d: float(len(ranked) - i) for i, d in enumerate(ranked)}}
    scores = pytrec_eval.RelevanceEvaluator({"q": dict(relevant)}, {"ndcg_cut.10"}).evaluate(run)
    return float(scores["q"]["ndcg_cut_10"])


def select_weight(lists: Sequence[tuple[Sequence[str], np.ndarray, np.ndarray]],
                  qrels: Sequence[Mapping[str, int]], grid: Sequence[float] = GRID) -> tuple[float, dict[float, float]]:
    """The α of ``grid`` with the best mean nDCG@10 over dev queries, and the whole curve.

    Args:
        lists: per dev query, (document ids (n,) in first-stage order, first-stage scores (n,),
            cross-encoder scores (n,)).
        qrels: per dev query, ``{document id: grade}``.
        grid: candidate weights in [0, 1].

    Returns:
        (α, {α: mean dev nDCG@10}); ties go to the smaller α (closer to the first stage: the safer
        choice on a small dev split).
    """
    if not lists:
        raise InputError("no dev queries to select the rerank weight on")
    curve = {}
    for alpha in grid:
        total = 0.0
        for (docs, first, ce), rel in zip(lists, qrels, strict=True):
            mixed = interpolate(ce, first, alpha)
            order = np.lexsort((np.arange(len(docs)), -mixed))  # mixed desc, then first-stage position
            total += ndcg10([docs[i] for i in order], rel)
        curve[float(alpha)] = total / len(lists)
    best = max(curve.values())
    return min(a for a, v in curve.items() if v == best), curve


def write_weight(model_dir: str | Path, alpha: float, record: Mapping) -> Path:
    """Write ``{"weight": α, "normalisation": "min-max", ...record}`` to ``model_dir/rerank.json`` atomically."""
    path = Path(model_dir) / WEIGHT_FILE
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"weight": check_weight(alpha), "normalisation": "min-max", **record}, indent=2) + "\n",
                   encoding="utf-8")
    tmp.replace(path)
    return path


def read_weight(model_dir: str | Path) -> float | None:
    """α saved beside a cross-encoder folder, or ``None`` where there is no ``rerank.json``.

    Raises:
        InputError: the file exists but is not JSON with a ``weight`` (or, as first written, ``alpha``) in [0, 1].
    """
    record = read_weight_record(model_dir)
    if record is None:
        return None
    path = Path(model_dir) / WEIGHT_FILE
    key = "weight" if "weight" in record else "alpha"
    if key not in record:
        raise InputError(f"{path}: not a rerank weight file (no 'weight'); delete it or rerun "
                         "`rag train reranker --select-weight-only`")
    return check_weight(record[key], f"{path}: {key}")


def read_weight_record(model_dir: str | Path) -> dict | None:
    """The whole ``rerank.json`` beside a cross-encoder folder (``mode``, ``dev_depth``, …), or ``None``.

    Raises:
        InputError: the file exists but is not a JSON object.
    """
    path = Path(model_dir) / WEIGHT_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise InputError(f"{path}: not a rerank weight file ({exc}); delete it or rerun "
                         "`rag train reranker --select-weight-only`") from None
    if not isinstance(record, dict):
        raise InputError(f"{path}: not a rerank weight file (not a JSON object); delete it or rerun "
                         "`rag train reranker --select-weight-only`")
    return record
