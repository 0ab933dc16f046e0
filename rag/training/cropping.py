"""Independent random cropping: positive pairs from unlabeled documents (Contriever).

Contriever (Izacard et al. 2022, "Unsupervised Dense Information Retrieval with Contrastive
Learning", arXiv:2112.09118 §3.2) makes a positive pair from one document by sampling two spans
*independently*: each span has a length ratio r ~ U[r_min, r_max] of the document (0.1–0.5 in
the paper) and a uniform start, so the two views may overlap, nest or be disjoint. Each view then
loses every token independently with probability p_del (token deletion, 0.1 in the paper's best
setting). Other documents in the batch are the negatives. Spans here are over whitespace words,
so cropping does not depend on the encoder's tokenizer.

Example:
    >>> import random
    >>> cfg = CropConfig(min_ratio=0.5, max_ratio=0.5)
    >>> crop_span(10, random.Random(0), cfg)
    (3, 8)
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass

from indexes.errors import InputError
from rag.training.data import Pair


@dataclass(frozen=True)
class CropConfig:
    """Span sampling for one view.

    Attributes:
        min_ratio / max_ratio: bounds of r, the span length as a fraction of the document
            (Contriever §3.2: 0.1 and 0.5).
        deletion: p_del, the probability of dropping each word of a view (0 disables it).
        min_words: documents shorter than this are skipped: two views of a 3-word text are
            near-copies and teach nothing.
    """

    min_ratio: float = 0.1
    max_ratio: float = 0.5
    deletion: float = 0.0
    min_words: int = 8

    def __post_init__(self) -> None:
        if not 0 < self.min_ratio <= self.max_ratio <= 1:
            raise InputError(f"crop ratios need 0 < min ≤ max ≤ 1, got {self.min_ratio}, {self.max_ratio}")
        if not 0 <= self.deletion < 1:
            raise InputError(f"deletion probability must be in [0, 1), got {self.deletion}")


def crop_span(n_words: int, rng: random.Random, config: CropConfig) -> tuple[int, int]:
    """``(start, end)`` of one span: ``end - start = max(1, round(r·n))``, ``0 ≤ start < end ≤ n``."""
    r = rng.uniform(config.min_ratio, config.max_ratio)
    length = max(1, min(n_words, round(r * n_words)))
    start = rng.randint(0, n_words - length)
    return start, start + length


def crop_view(words: list[str], rng: random.Random, config: CropConfig) -> str:
    """One view: a random span, then independent word deletion (never deleting every word)."""
    start, end = crop_span(len(words), rng, config)
    span = words[start:end]
    if config.deletion > 0:
        kept = [w for w in span if rng.random() >= config.deletion]
        span = kept or span[:1]
    return " ".join(span)


def cropped_pairs(documents: Mapping[str, str], config: CropConfig = CropConfig(), views: int = 1,
                  seed: int = 13) -> list[Pair]:
    """``views`` independent (view, view) pairs per document long enough to crop.

    Args:
        documents: ``{doc id: text}``.
        config: span and deletion settings.
        views: pairs per document; one per epoch gives every epoch fresh crops.
        seed: the cropping seed (same seed, same pairs).
    """
    rng = random.Random(seed)
    tokenized = [(d, t.split()) for d, t in documents.items()]
    usable = [(d, w) for d, w in tokenized if len(w) >= config.min_words]
    if len(usable) < 2:
        raise InputError(f"only {len(usable)} documents have ≥ {config.min_words} words; "
                         "unsupervised training needs at least two (their crops are each other's negatives)")
    return [Pair(d, crop_view(w, rng, config), d, crop_view(w, rng, config))
            for _ in range(views) for d, w in usable]
