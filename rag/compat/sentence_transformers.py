"""The sentence-transformers pieces the retriever and reranker trainers use, in one place.

sentence-transformers 5.4 moved its training components into ``sentence_transformers.base``
(evaluators, batch samplers) and ``sentence_transformers.sentence_transformer`` (losses), and gave
``MultipleNegativesRankingLoss`` the ``directions=`` / ``partition_mode=`` options that express
symmetric InfoNCE. The trainers (:mod:`rag.training.trainer`, :mod:`rag.training.distill`,
:mod:`rag.training.dev_eval`) import them from here only.

The learning-rate warmup is given to ``TrainingArguments`` as a *fraction* of the training steps
through ``warmup_steps`` (a float below 1 is read as a ratio since transformers 5.0, which
deprecated ``warmup_ratio``): :func:`warmup_arguments`.

Importing this module checks the installed version (:data:`MIN_VERSION`, the lower bound declared
in ``pyproject.toml``) and raises :class:`rag.compat.DependencyVersionError` if it is older.
"""

from __future__ import annotations

from typing import Any

from rag.compat import require

MIN_VERSION = "5.4"
VERSION = require("sentence-transformers", MIN_VERSION, "retriever training (InfoNCE directions, base evaluators)")

from sentence_transformers import (  # noqa: E402  (after the version check)
    SentenceTransformer,
    SentenceTransformerTrainer,
    SentenceTransformerTrainingArguments,
)
from sentence_transformers.base.evaluation import BaseEvaluator  # noqa: E402
from sentence_transformers.cross_encoder import CrossEncoderTrainer, CrossEncoderTrainingArguments  # noqa: E402
from sentence_transformers.cross_encoder.evaluation import CrossEncoderRerankingEvaluator  # noqa: E402
from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss  # noqa: E402
from sentence_transformers.cross_encoder.losses import MultipleNegativesRankingLoss as _CEMultipleNegatives  # noqa: E402
from sentence_transformers.base.sampler import BatchSamplers  # noqa: E402
from sentence_transformers.sentence_transformer import losses  # noqa: E402

__all__ = ["MIN_VERSION", "BaseEvaluator", "BinaryCrossEntropyLoss", "CrossEncoderRerankingEvaluator",
           "CrossEncoderTrainer", "CrossEncoderTrainingArguments", "SentenceTransformer", "SentenceTransformerTrainer",
           "SentenceTransformerTrainingArguments", "info_nce_loss", "lce_loss", "mse_loss", "no_duplicates_sampler",
           "warmup_arguments"]


def info_nce_loss(model, scale: float, symmetric: bool = False, mini_batch_size: int | None = None):
    """InfoNCE over in-batch (+ hard) negatives: ``(Cached)MultipleNegativesRankingLoss``.

    Args:
        model: the SentenceTransformer being trained.
        scale: ``1/τ``, the inverse softmax temperature.
        symmetric: also score passage→query (each direction normalised separately).
        mini_batch_size: gradient caching (GradCache, Gao et al. 2021) with this chunk size; ``None`` for none.
    """
    directions = ("query_to_doc", "doc_to_query") if symmetric else ("query_to_doc",)
    common: dict[str, Any] = dict(scale=scale, directions=directions,
                                  partition_mode="per_direction" if symmetric else "joint")
    if mini_batch_size:
        return losses.CachedMultipleNegativesRankingLoss(model, mini_batch_size=mini_batch_size, **common)
    return losses.MultipleNegativesRankingLoss(model, **common)


def lce_loss(model):
    """Localized contrastive estimation (Gao, Dai & Callan, ECIR 2021, §3.2) for a cross-encoder.

    Softmax cross-entropy over the raw logits of each row's (query, positive) and its hard
    negatives (dataset columns after the positive), with no in-batch negatives and no scaling:
    the cross-encoder ``MultipleNegativesRankingLoss`` (scale 1, identity activation) whose
    in-batch negative generator yields nothing (its ``num_negatives`` cannot be 0).
    """
    import torch

    return _LocalizedContrastiveLoss(model, num_negatives=None, scale=1.0, activation_fn=torch.nn.Identity())


class _LocalizedContrastiveLoss(_CEMultipleNegatives):
    """The cross-encoder MNRL restricted to each row's own hard negatives (LCE)."""

    def get_in_batch_negatives(self, anchors, candidates):
        return iter(())


def mse_loss(model):
    """Mean squared error between the model's embedding and a target vector per text (distillation)."""
    return losses.MSELoss(model)


def no_duplicates_sampler():
    """The batch sampler that keeps a text out of a batch that already holds it (a duplicate is a false negative)."""
    return BatchSamplers.NO_DUPLICATES


def warmup_arguments(ratio: float) -> dict[str, float]:
    """``TrainingArguments`` keywords for a linear warmup over ``ratio`` (0 ≤ ratio < 1) of the steps.

    Example:
        >>> warmup_arguments(0.1)
        {'warmup_steps': 0.1}
    """
    if not 0.0 <= ratio < 1.0:
        raise ValueError(f"warmup ratio must be in [0, 1), not {ratio}")
    return {"warmup_steps": ratio}
