"""A QA evaluation: per-item metrics, judge scores, human labels → the numbers of the report.

:func:`score_items` pairs a QA set with predictions and computes SQuAD EM/F1, answer recall of
the retrieved passages and latency per item; :func:`evaluate` adds judge scores and human labels
and computes everything ``report.json`` holds: every estimator's interval, effective human
labels, judge agreement and calibration, interval width vs number of labels (by subsampling),
per-question-type estimates and the worst items. When no human labels are given, the gold
answers of a seeded random subset stand in for them ("gold-derived" labels), which is how the
SQuAD benchmark in ``docs/benchmarks.md`` simulates a labelling budget.
"""

from __future__ import annotations

import random
import re
from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np

from eval.bayes_ppi import BayesConfig
from eval.estimators import BINARY_METHODS, Method, effective_labels, estimate_all
from eval.labels import align
from eval.qa_data import Prediction, QAItem
from eval.qa_metrics import answer_recall, exact_match, f1_score
from eval.stratified import question_type, stratified_estimates
from indexes.errors import InputError


@dataclass(frozen=True)
class QAEvalConfig:
    """Settings of a QA evaluation.

    Attributes:
        alpha: error level of every interval.
        k: answer recall is measured on the top-k retrieved passages.
        correctness: gold-derived correctness: ``"f1"`` (token F1 ≥ ``f1_threshold``, for short
            answers) or ``"contains"`` (a gold answer occurs in the answer, for sentence answers).
        f1_threshold: 0.5 accepts answers that differ from a gold one only by extent.
        gold_labels: size of the random subset whose gold-derived correctness serves as human
            labels when no labels file is given; 300 is a realistic labelling budget.
        seed: seed of that subset and of the subsampling.
        subsample_sizes: human-label counts of the width-vs-labels curve.
        subsample_repeats: random subsets averaged per point; 20 smooths the curve.
        worst: items listed in the "worst items" table.
        bayes: settings of the Bayesian estimators.
    """

    alpha: float = 0.1
    k: int = 5
    correctness: Literal["f1", "contains"] = "f1"
    f1_threshold: float = 0.5
    gold_labels: int = 300
    seed: int = 0
    subsample_sizes: tuple[int, ...] = (50, 100, 150, 200, 300)
    subsample_repeats: int = 20
    worst: int = 10
    bayes: BayesConfig = field(default_factory=BayesConfig)


@dataclass(frozen=True)
class ItemRow:
    """Per-item results (one row of ``items.jsonl``)."""

    id: str
    question: str
    answer: str
    golds: tuple[str, ...]
    qtype: str
    em: float
    f1: float
    recall: float | None
    latency_ms: float | None
    correct: float


def score_items(items: list[QAItem], predictions: dict[str, Prediction], config: QAEvalConfig) -> list[ItemRow]:
    """EM, F1, answer recall@k and gold-derived correctness of every item that has a prediction."""
    known = {i.id for i in items}
    stray = [p for p in predictions if p not in known]
    if stray:
        raise InputError(f"predictions: {len(stray)} id(s) are not in the dataset (first: {stray[0]!r}); "
                         "check that predictions and dataset are the same split")
    missing = [i.id for i in items if i.id not in predictions]
    if missing:
        raise InputError(f"predictions: {len(missing)} question(s) have no prediction (first: {missing[0]!r}); "
                         "answer every question or pass a dataset restricted to the answered ones")
    rows = []
    for item in items:
        p = predictions[item.id]
        f1 = f1_score(p.answer, item.answers)
        if config.correctness == "f1":
            correct = float(f1 >= config.f1_threshold)
        else:
            correct = answer_recall([p.answer], item.answers)
        recall = answer_recall(p.passages, item.answers, config.k) if p.passages else None
        rows.append(ItemRow(item.id, item.question, p.answer, item.answers, question_type(item.question),
                            exact_match(p.answer, item.answers), f1, recall, p.latency_ms, correct))
    return rows


def gold_labels(rows: list[ItemRow], size: int, seed: int) -> dict[str, float]:
    """Gold-derived correctness of a seeded random subset of ``size`` items, as ``{id: label}``."""
    chosen = random.Random(seed).sample(range(len(rows)), min(size, len(rows)))
    return {rows[i].id: rows[i].correct for i in sorted(chosen)}


def _estimates_dict(results, classical) -> dict:
    return {m.value: {**e.to_dict(), "width": e.width, "effective_labels": effective_labels(e, classical)}
            for m, e in results.items()}


def _summary(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def evaluate(rows: list[ItemRow], scores: dict[str, float], labels: dict[str, float], judge_name: str,
             judge_uses_gold: bool, config: QAEvalConfig = QAEvalConfig(), labels_source: str = "file") -> dict:
    """Everything ``report.json`` holds (see the module docstring)."""
    data = align(labels, scores, labels_source, "judge scores")
    binary = set(data.Y.tolist()) <= {0.0, 1.0}
    methods = tuple(m for m in Method if binary or m not in BINARY_METHODS)
    results = estimate_all(data.Y, data.Yhat, data.Yhat_unlabeled, config.alpha, methods, config.bayes)
    by_id = {r.id: r for r in rows}
    latency = [r.latency_ms for r in rows if r.latency_ms is not None]
    qtypes = sorted({r.qtype for r in rows})
    gold = {
        "n": len(rows),
        "overall": {"em": _summary([r.em for r in rows]), "f1": _summary([r.f1 for r in rows]),
                    f"answer_recall@{config.k}": _summary([r.recall for r in rows if r.recall is not None]),
                    "gold_correct": _summary([r.correct for r in rows])},
        "by_type": {t: {"n": sum(r.qtype == t for r in rows),
                        "em": _summary([r.em for r in rows if r.qtype == t]),
                        "f1": _summary([r.f1 for r in rows if r.qtype == t]),
                        f"answer_recall@{config.k}": _summary([r.recall for r in rows
                                                                if r.qtype == t and r.recall is not None])}
                    for t in qtypes},
        "latency_ms": ({"mean": float(np.mean(latency)), "p50": float(np.percentile(latency, 50)),
                        "p95": float(np.percentile(latency, 95))} if latency else None),
    }
    strata = stratified_estimates([by_id[i].qtype for i in data.ids], [by_id[i].qtype for i in data.ids_unlabeled],
                                  data.Y, data.Yhat, data.Yhat_unlabeled, config.alpha, methods)
    worst = sorted(rows, key=lambda r: (r.f1, -scores.get(r.id, 0.0)))[: config.worst]
    return {
        "n_items": len(rows),
        "alpha": config.alpha,
        "labels": {"source": labels_source, "n": int(data.Y.shape[0]), "N": int(data.Yhat_unlabeled.shape[0]),
                   "mean": float(data.Y.mean())},
        "judge": {"name": judge_name, "uses_gold": judge_uses_gold, "mean_score": float(np.mean(list(scores.values())))},
        "estimates": _estimates_dict(results, results[Method.CLASSICAL]),
        "agreement": _agreement(data.Y, data.Yhat) if binary else None,
        "calibration": _calibration(data.Y, data.Yhat),
        "width_vs_n": _width_vs_n(data, methods, config),
        "strata": {s: _estimates_dict(res, res[Method.CLASSICAL]) for s, res in strata.items()},
        "gold_metrics": gold,
        "worst": [{"id": r.id, "question": r.question, "answer": r.answer, "golds": list(r.golds), "f1": r.f1,
                   "judge": scores.get(r.id), "label": labels.get(r.id)} for r in worst],
        "config": {k: v for k, v in asdict(config).items() if k != "bayes"} | {"bayes": asdict(config.bayes)},
    }


def _agreement(Y: np.ndarray, Yhat: np.ndarray, threshold: float = 0.5) -> dict:
    """Confusion matrix of the judge thresholded at 1/2 against the human labels, and correlations."""
    verdict = Yhat >= threshold
    tp, fp = int(np.sum(verdict & (Y == 1))), int(np.sum(verdict & (Y == 0)))
    fn, tn = int(np.sum(~verdict & (Y == 1))), int(np.sum(~verdict & (Y == 0)))
    corr = float(np.corrcoef(Y, Yhat)[0, 1]) if Y.std() > 0 and Yhat.std() > 0 else None
    return {"threshold": threshold, "tp": tp, "fp": fp, "fn": fn, "tn": tn,
            "accuracy": (tp + tn) / len(Y), "pearson": corr}


def _calibration(Y: np.ndarray, Yhat: np.ndarray, bins: int = 10) -> dict:
    """Mean judge score and fraction labelled correct in equal-width score bins (empty bins dropped)."""
    idx = np.clip((Yhat * bins).astype(int), 0, bins - 1)
    count = np.bincount(idx, minlength=bins)
    used = count > 0
    return {"mean_score": (np.bincount(idx, Yhat, bins)[used] / count[used]).tolist(),
            "frac_correct": (np.bincount(idx, Y, bins)[used] / count[used]).tolist(),
            "count": count[used].tolist()}


def _width_vs_n(data, methods: tuple[Method, ...], config: QAEvalConfig) -> dict:
    """Mean interval width of each method on random subsets of the human labels."""
    rng = np.random.default_rng(config.seed)
    n = data.Y.shape[0]
    sizes = [m for m in config.subsample_sizes if 30 <= m < n] + [n]
    widths = {m.value: [] for m in methods}
    for size in sizes:
        acc = {m: [] for m in methods}
        for _ in range(config.subsample_repeats if size < n else 1):
            sub = rng.choice(n, size, replace=False)
            res = estimate_all(data.Y[sub], data.Yhat[sub], data.Yhat_unlabeled, config.alpha, methods, config.bayes)
            for m in methods:
                acc[m].append(res[m].width)
        for m in methods:
            widths[m.value].append(float(np.mean(acc[m])))
    return {"n": sizes, "widths": widths}


def clean_answer(text: str, prefix: str = "") -> str:
    """An answer without a leading label and ``[n]`` citation markers (for EM/F1 on pipeline output)."""
    if prefix and text.startswith(prefix):
        text = text[len(prefix):]
    return re.sub(r"\s*\[\d+\]", "", text).strip()
