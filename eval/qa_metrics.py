"""Extractive-QA metrics: SQuAD exact match and token F1, and answer recall of retrieved passages.

Answers are compared after the SQuAD v1.1 normalisation: lower-case, drop punctuation, drop the
articles "a", "an", "the", collapse whitespace. EM is 1 when the normalised prediction equals a
normalised gold answer; F1 is the harmonic mean of token precision and recall against the best
gold answer,

    P = |pred ∩ gold| / |pred|,  R = |pred ∩ gold| / |gold|,  F1 = 2PR / (P + R),

with ∩ the multiset intersection of tokens. Answer recall@k (Karpukhin et al. 2020, "top-k
retrieval accuracy") is 1 when a normalised gold answer occurs in one of the top-k passages.

References:
    Rajpurkar, Zhang, Lopyrev, Liang. SQuAD: 100,000+ questions for machine comprehension of
    text. EMNLP 2016 (arXiv:1606.05250), and its official v1.1 evaluation script.
    Karpukhin et al. Dense passage retrieval for open-domain QA. EMNLP 2020 (arXiv:2004.04906).

Example:
    >>> exact_match("The Denver Broncos!", ["Denver Broncos"])
    1.0
    >>> round(f1_score("Denver Broncos team", ["Denver Broncos"]), 3)
    0.8
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)


def normalize_answer(text: str) -> str:
    """SQuAD v1.1 normalisation: lower-case, no punctuation, no articles, single spaces."""
    return " ".join(_ARTICLES.sub(" ", text.lower().translate(_PUNCT)).split())


def _f1(prediction: str, gold: str) -> float:
    pred, ref = normalize_answer(prediction).split(), normalize_answer(gold).split()
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def exact_match(prediction: str, golds: Sequence[str]) -> float:
    """1.0 if the normalised prediction equals any normalised gold answer, else 0.0."""
    norm = normalize_answer(prediction)
    return float(any(norm == normalize_answer(g) for g in golds))


def f1_score(prediction: str, golds: Sequence[str]) -> float:
    """Token F1 against the best-matching gold answer (0.0 when there are no gold answers)."""
    return max((_f1(prediction, g) for g in golds), default=0.0)


def answer_recall(passages: Sequence[str], golds: Sequence[str], k: int | None = None) -> float:
    """1.0 if a normalised gold answer occurs in one of the first ``k`` passages (all if ``None``)."""
    normed = [f" {normalize_answer(g)} " for g in golds if normalize_answer(g)]
    return float(any(g in f" {normalize_answer(p)} " for p in passages[:k] for g in normed))
