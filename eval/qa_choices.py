"""The choices of a QA evaluation, as enums: the judge, the correctness rule and the estimator.

Kept free of heavy imports so that the CLI can offer them as option types without loading numpy
or models (``rag --help`` stays fast).
"""

from __future__ import annotations

from enum import Enum


class JudgeName(str, Enum):
    """The automatic judge of ``rag eval qa`` (see :mod:`eval.judges`)."""

    EMBEDDING = "embedding"  # reference-free: cosine(answer, question)
    EMBEDDING_GOLD = "embedding-gold"  # cosine(answer, gold answers)
    F1 = "f1"  # token F1 >= 0.5 against the gold answers
    LLM = "llm"  # the generator asked yes/no


class Correctness(str, Enum):
    """The rule that derives a 0/1 "human" label from the gold answers."""

    AUTO = "auto"  # contains for extractive answers, f1 for generated ones
    F1 = "f1"  # token F1 >= 0.5: for short answers
    CONTAINS = "contains"  # a SQuAD-normalised gold answer occurs in the answer: for sentence answers


class Method(str, Enum):
    """Estimator names, as typed on the command line and used as keys in ``report.json`` (see
    :mod:`eval.estimators`)."""

    CLASSICAL = "classical"
    PPI = "ppi"
    PPIPP = "ppi++"
    BAYES_DIFF = "bayes-diff"
    BAYES_CHAIN = "bayes-chain"
