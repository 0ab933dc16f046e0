"""The RAG prompt as token segments: a shared prefix, one block per passage, the question.

    prompt = prefix ‖ block(p_1) ‖ … ‖ block(p_k) ‖ question

The prefix (instructions; with a chat template, everything up to the start of the user turn)
is the same for every question, and each block depends on its passage only — never on its
rank — so both can be encoded once, offline (TurboRAG, Lu et al., 2024, arXiv:2410.07590, §3;
Block-Attention, Sun et al., 2024, arXiv:2409.15355, §3). Citations are numbered by order of
appearance, which the question segment states. Every path (cached or full prefill) uses exactly
these token ids, so the two are comparable token for token.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass

_SLOT = "\x00RAG-PASSAGES\x00"  # split point of the rendered chat template


@dataclass(frozen=True)
class PromptTemplate:
    """Text of each segment. ``passage`` takes ``{title}`` and ``{text}``; ``question`` takes
    ``{question}`` and ``{n}`` (the number of documents).

    Attributes:
        system: instructions, placed in the system turn of a chat template or first otherwise.
        passage: one document block; its tokens are cached, so it must not depend on the rank.
        question: the question after the documents.
        max_passage_tokens: a block is cut to this many tokens (bounds the cache and the prompt).
    """

    system: str = (
        "Answer the question using only the documents given. The documents are numbered 1, 2, 3, ... "
        "in the order they appear; cite the ones you use as [1], [2]. If they do not contain the "
        "answer, say so."
    )
    passage: str = "Document: {title}\n{text}\n\n"
    question: str = "Question (documents 1-{n} above): {question}\nAnswer:"
    max_passage_tokens: int = 512  # SciFact abstracts: ~300 tokens; longer passages are cut

    def fingerprint(self, tokenizer) -> str:
        """sha256 of everything that decides the cached tokens: this template, the chat template
        and the tokenizer's vocabulary size and class."""
        blob = json.dumps(
            {
                "template": asdict(self),
                "chat_template": getattr(tokenizer, "chat_template", None),
                "tokenizer": [type(tokenizer).__name__, len(tokenizer)],
            },
            sort_keys=True,
        )
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class PromptSegments:
    """Token ids of the three kinds of segment of one prompt."""

    prefix: tuple[int, ...]
    blocks: tuple[tuple[int, ...], ...]
    question: tuple[int, ...]

    def flat(self) -> list[int]:
        """The whole prompt, as the full-prefill path feeds it."""
        out = list(self.prefix)
        for b in self.blocks:
            out.extend(b)
        return out + list(self.question)


class PromptBuilder:
    """Renders a :class:`PromptTemplate` with a generator's tokenizer into segments."""

    def __init__(self, generator, template: PromptTemplate = PromptTemplate()) -> None:
        self.generator = generator
        self.template = template
        rendered = generator.chat_text(_SLOT, system=template.system)
        head, _, tail = rendered.partition(_SLOT)
        self._head, self._tail = head, tail
        self.prefix_ids = tuple(generator.encode(head))

    def block_ids(self, title: str, text: str) -> tuple[int, ...]:
        ids = self.generator.encode(self.template.passage.format(title=title, text=text))
        return tuple(ids[: self.template.max_passage_tokens])

    def question_ids(self, question: str, n: int) -> tuple[int, ...]:
        return tuple(self.generator.encode(self.template.question.format(question=question, n=n) + self._tail))

    def segments(self, question: str, passages: Sequence[tuple[str, str]]) -> PromptSegments:
        """Segments for ``question`` over ``passages`` given as ``(title, text)`` pairs."""
        blocks = tuple(self.block_ids(t, x) for t, x in passages)
        return PromptSegments(self.prefix_ids, blocks, self.question_ids(question, len(passages)))
