"""Extractive answers: the sentences of the retrieved passages closest to the question, cited.

Each passage is cut into sentences by syntok's rule-based segmenter (abbreviations such as
"Dr.", initials such as "D.", "c. 1850", decimals and closing quotes are handled; no model, no
data download), every sentence is scored by the cosine of unit vectors under the bi-encoder
``f``,

    score(s) = f(q) · f(s),

and the ``sentences`` best are quoted in score order, each followed by ``[n]``, the rank of its
passage. When even the best sentence scores below ``min_score`` the passages do not talk about
the question, and *no answer* is returned instead of quoting off-topic text.

Example:
    >>> split_sentences('Dr. Smith met D. Jones in c. 1850. He said "It is done." Then he left.')
    ['Dr. Smith met D. Jones in c. 1850.', 'He said "It is done."', 'Then he left.']
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rag.types import Hit


@dataclass(frozen=True)
class ExtractiveConfig:
    """How an extractive answer is chosen.

    Attributes:
        sentences: sentences quoted; 3 is enough to carry an answer and short enough to read.
            ``rag ask`` and ``rag eval qa`` share this default, so the evaluation measures what
            a user reads.
        min_score: the least cosine the best sentence must reach to be quoted. With the default
            MiniLM encoder the best sentence of the paragraph that holds the answer scores 0.45–0.82
            (5th–95th percentile, 300 SQuAD dev questions), that of another article's paragraph
            −0.04–0.24; at 0.3, 99.0% of the answerable questions are answered and 97.0% of the
            off-topic ones refused (docs/benchmarks.md, "Extractive answers"). The scale is the
            encoder's: re-measure for another one (e5 models give every pair a high cosine).
            Use -1 to quote always.
    """

    sentences: int = 3
    min_score: float = 0.3

    def __post_init__(self) -> None:
        if self.sentences < 1:
            raise ValueError(f"sentences must be >= 1, got {self.sentences}")
        if not -1.0 <= self.min_score <= 1.0:
            raise ValueError(f"min_score is a cosine in [-1, 1], got {self.min_score}")


@dataclass(frozen=True)
class Extract:
    """An extractive answer.

    Attributes:
        text: the quoted sentences, each followed by ``[n]``; empty when nothing matched.
        passages: 0-based ranks of the quoted passages, ascending.
        best_score: cosine of the best sentence (``-inf`` when the passages have no text).
    """

    text: str
    passages: tuple[int, ...]
    best_score: float

    @property
    def found(self) -> bool:
        return bool(self.text)


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text``, each a verbatim, stripped slice of it (syntok's segmenter)."""
    from syntok.segmenter import analyze

    out = []
    for paragraph in analyze(text):
        for sentence in paragraph:
            # token offsets index the original text: slicing keeps it byte for byte (syntok
            # itself may normalise token values, e.g. "n't" -> "not")
            start, end = sentence[0].offset, sentence[-1].offset + len(sentence[-1].value)
            piece = text[start:end].strip()
            if piece:
                out.append(piece)
    return out


def extract(question: str, hits: list[Hit], encoder, config: ExtractiveConfig = ExtractiveConfig()) -> Extract:
    """The ``config.sentences`` sentences of ``hits`` most similar to ``question`` (see the module docstring).

    Args:
        question: the question.
        hits: retrieved passages, best first.
        encoder: anything with ``encode_queries`` and ``encode_passages`` returning unit vectors.
        config: sentences to quote and the score threshold.
    """
    sentences = [(i, s) for i, h in enumerate(hits) for s in split_sentences(h.text)]
    if not sentences:
        return Extract("", (), float("-inf"))
    q = encoder.encode_queries([question])  # (1, d)
    S = encoder.encode_passages([s for _, s in sentences])  # (n, d)
    scores = (np.asarray(S) @ np.asarray(q)[0]).astype(np.float64)  # (n,)
    best = np.argsort(-scores, kind="stable")[: config.sentences]
    top = float(scores[best[0]])
    if top < config.min_score:
        return Extract("", (), top)
    text = " ".join(f"{sentences[j][1]} [{sentences[j][0] + 1}]" for j in best)
    return Extract(text, tuple(sorted({sentences[j][0] for j in best})), top)
