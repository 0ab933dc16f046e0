"""Judges ("autoraters"): cheap per-item scores in [0, 1] that stand in for a human's verdict.

A judge maps a batch of :class:`JudgeInput` to scores, shape (m,), and says whether it reads
the gold answers (``uses_gold``): prediction-powered inference corrects any judge's bias, but a
judge that sees gold answers is only available where gold answers exist, whereas a
reference-free judge can score unlabelled production traffic.

* :class:`F1ThresholdJudge` — 1 when the SQuAD token F1 against the gold answers reaches a
  threshold (reference-based, deterministic).
* :class:`EmbeddingJudge` — cosine similarity under a bi-encoder, clipped to [0, 1], between the
  answer and either the gold answers (reference-based) or the question (reference-free: "does the
  answer talk about what was asked?").
* :class:`LLMJudge` — asks a generator a yes/no question (Zheng et al. 2023, "LLM-as-a-judge",
  single-answer grading) and maps "yes" to 1 and "no" to 0; a generator that returns the
  probability of "yes" (a float) is used as is.

References:
    Zheng et al. Judging LLM-as-a-judge with MT-Bench and Chatbot Arena. NeurIPS 2023
    (arXiv:2306.05685) (single-answer grading).

Example:
    >>> item = JudgeInput(id="q1", question="Who?", answer="Ada Lovelace", golds=("Lovelace",))
    >>> F1ThresholdJudge(threshold=0.5).score([item]).tolist()
    [1.0]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np

from eval.qa_metrics import f1_score


@dataclass(frozen=True)
class JudgeInput:
    """What a judge may look at for one item.

    Attributes:
        id: item id.
        question: the question.
        answer: the system's answer.
        passages: retrieved passages, best first.
        golds: gold answers; reference-free judges never read them.
    """

    id: str
    question: str
    answer: str
    passages: tuple[str, ...] = field(default_factory=tuple)
    golds: tuple[str, ...] = field(default_factory=tuple)


class Judge(Protocol):
    """Scores answers in [0, 1]; higher means "more likely correct"."""

    name: str
    uses_gold: bool

    def score(self, items: Sequence[JudgeInput]) -> np.ndarray: ...


@dataclass(frozen=True)
class F1ThresholdJudge:
    """1.0 when token F1 ≥ ``threshold``, else 0.0.

    Attributes:
        threshold: 0.5 accepts answers that differ from a gold one by extent ("the Broncos" vs
            "Denver Broncos") and rejects ones that merely share a word.
    """

    threshold: float = 0.5
    name: str = "f1-threshold"
    uses_gold: bool = True

    def score(self, items: Sequence[JudgeInput]) -> np.ndarray:
        return np.array([float(f1_score(i.answer, i.golds) >= self.threshold) for i in items])


@dataclass(frozen=True)
class EmbeddingJudge:
    """Cosine similarity of unit vectors, clipped to [0, 1].

    Attributes:
        encode: texts → L2-normalised vectors, shape (m, d) (e.g. ``Encoder.encode_passages``).
        reference: ``"gold"`` compares the answer with the best gold answer; ``"question"``
            compares it with the question and never sees gold answers.
    """

    encode: Callable[[list[str]], np.ndarray]
    reference: Literal["gold", "question"] = "question"
    name: str = "embedding"

    @property
    def uses_gold(self) -> bool:
        return self.reference == "gold"

    def score(self, items: Sequence[JudgeInput]) -> np.ndarray:
        A = self.encode([i.answer for i in items])  # (m, d)
        if self.reference == "question":
            R = self.encode([i.question for i in items])  # (m, d)
            return np.clip(np.sum(A * R, axis=1), 0.0, 1.0)
        golds = [g for i in items for g in (i.golds or ("",))]
        G = self.encode(golds)  # (total golds, d)
        owner = np.repeat(np.arange(len(items)), [max(len(i.golds), 1) for i in items])  # (total golds,)
        sims = np.sum(G * A[owner], axis=1)  # (total golds,)
        best = np.full(len(items), -1.0)
        np.maximum.at(best, owner, sims)
        return np.clip(best, 0.0, 1.0)


JUDGE_PROMPT = (
    "You are grading an answer to a question, using only the passages below.\n\n"
    "Passages:\n{context}\n\nQuestion: {question}\nAnswer: {answer}\n\n"
    "Is the answer correct and supported by the passages? Reply with one word: yes or no."
)


@dataclass(frozen=True)
class LLMJudge:
    """LLM-as-judge through any text generator.

    Attributes:
        generate: prompt → reply text (parsed as yes/no) or P("yes") as a float, e.g.
            ``Generator.complete`` of :mod:`rag.generation.generator`.
        prompt: template with ``{question}``, ``{answer}`` and ``{context}``; never the gold.
        max_passages: passages shown in ``{context}``; 3 keeps a small model's prompt short.
        unparsed: score for a reply that is neither yes nor no (1/2: no information).
    """

    generate: Callable[[str], str | float]
    prompt: str = JUDGE_PROMPT
    max_passages: int = 3
    unparsed: float = 0.5
    name: str = "llm"
    uses_gold: bool = False

    def score(self, items: Sequence[JudgeInput]) -> np.ndarray:
        return np.array([self._one(i) for i in items])

    def _one(self, item: JudgeInput) -> float:
        context = "\n".join(f"[{n + 1}] {p}" for n, p in enumerate(item.passages[: self.max_passages]))
        reply = self.generate(self.prompt.format(question=item.question, answer=item.answer, context=context))
        if isinstance(reply, (int, float)):
            return float(np.clip(reply, 0.0, 1.0))
        words = reply.lower().split()
        first = words[0].strip("\"'*.,!:;") if words else ""
        return {"yes": 1.0, "no": 0.0}.get(first, self.unparsed)
