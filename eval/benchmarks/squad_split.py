"""A deterministic article-level split of SQuAD v1.1 dev, and the fixed held-out question sample.

An article (its title) is *held out* when the first byte of ``sha256(title)`` is below
``256 · held_out_fraction``; otherwise its questions may be used for training. No model sees a
held-out article's questions in training, so scores on them measure generalisation to unseen
articles (the passages of every article stay in the retrieval corpus, as in open-domain QA).
The evaluation sample is ``random.Random(seed).sample`` of the held-out questions in file order.

Example:
    >>> is_held_out("Super_Bowl_50") in (True, False)
    True
"""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

from eval.qa_data import QAItem, load_qa

SQUAD_DEV = Path("/work/shared/data/squad-dev/dev-v1.1.json")
HELD_OUT_FRACTION = 0.5  # half of the 48 dev articles: ~5k held-out questions, ~5k for training


def is_held_out(title: str, held_out_fraction: float = HELD_OUT_FRACTION) -> bool:
    """Whether the article ``title`` belongs to the held-out (evaluation) part."""
    return hashlib.sha256(title.encode("utf-8")).digest()[0] < 256 * held_out_fraction


def split(items: list[QAItem]) -> tuple[list[QAItem], list[QAItem]]:
    """``(train, held_out)`` questions of ``items`` (their ``stratum`` is the article title)."""
    train = [q for q in items if not is_held_out(q.stratum)]
    held = [q for q in items if is_held_out(q.stratum)]
    return train, held


def held_out_sample(path: Path = SQUAD_DEV, n: int = 200, seed: int = 0) -> list[QAItem]:
    """The fixed evaluation sample: ``n`` held-out questions drawn with ``seed``."""
    _, held = split(load_qa(path))
    return random.Random(seed).sample(held, min(n, len(held)))
