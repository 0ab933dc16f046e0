"""Fusion-in-Decoder reader over a Hugging Face T5-family encoder-decoder.

FiD (Izacard & Grave, "Leveraging Passage Retrieval with Generative Models for Open Domain
Question Answering", EACL 2021, arXiv:2007.01282, §3) encodes the ``N`` passages of a question
independently and lets the decoder attend over all of them at once:

    H_n = Enc(q ++ p_n)                          # (L, d) for n = 1..N, in one (B·N, L) batch
    H   = [H_1 ; H_2 ; ... ; H_N]                # (N·L, d): "fusion in the decoder"
    y   = Dec(H)                                 # cross-attention over all N·L states

Encoder cost grows linearly in ``N`` (not quadratically, as one long input would). Like the
reference wrapper this module only reshapes ``(B·N, L) <-> (B, N·L)`` and hands the result to the
unmodified HF model as ``encoder_outputs`` with the matching attention mask: no attention code is
patched, so any transformers version whose T5 takes ``encoder_outputs`` works. Decoding (greedy or
beam search) is transformers' own ``generate``.

Example:
    >>> reader = FiDReader.from_pretrained("path/to/t5", FiDConfig(n_passages=5))  # doctest: +SKIP
    >>> reader.answer(["who wrote Hamlet?"], [["Hamlet is a tragedy by Shakespeare.", ...]])  # doctest: +SKIP
    ['Shakespeare']
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch

from rag.fid.inputs import FiDInputs, tokenize


@dataclass(frozen=True)
class FiDConfig:
    """How a FiD reader reads and decodes; immutable once built."""

    n_passages: int = 10  # FiD reads 100 with T5-base; 10 keeps CPU latency reasonable
    max_question_tokens: int = 40
    max_passage_tokens: int = 200  # FiD's 250 word-pieces, minus room for the question
    num_beams: int = 1  # 1 = greedy decoding; FiD reports greedy ≈ beam for short answers
    max_new_tokens: int = 32  # extractive QA answers are short


class PassageEncoder(Protocol):
    """Turns a tokenized batch into the decoder's memory: ``(B, N·L, d)`` states and ``(B, N·L)`` mask."""

    def __call__(self, inputs: FiDInputs) -> tuple[torch.Tensor, torch.Tensor]: ...


class FiDEncoder:
    """The plain FiD encoder: the model's own encoder stack over ``(B·N, L)`` rows."""

    def __init__(self, model) -> None:
        self.model = model

    def __call__(self, inputs: FiDInputs) -> tuple[torch.Tensor, torch.Tensor]:
        B, N, L = inputs.input_ids.shape
        out = self.model.get_encoder()(
            input_ids=inputs.input_ids.reshape(B * N, L).to(self.model.device),  # (B·N, L)
            attention_mask=inputs.attention_mask.reshape(B * N, L).long().to(self.model.device),
        )
        h = out.last_hidden_state  # (B·N, L, d)
        return h.reshape(B, N * L, -1), inputs.decoder_mask(inputs.attention_mask.to(h.device))  # (B, N·L, d), (B, N·L)


def answer_labels(tokenizer, answers: Sequence[str], max_tokens: int) -> torch.Tensor:
    """Teacher-forcing targets: answer ids + end-of-sequence, ``-100`` (ignored by the loss) on padding."""
    eos = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.sep_token_id
    rows = [r[: max_tokens - 1] + [eos] for r in tokenizer(list(answers), add_special_tokens=False)["input_ids"]]
    labels = torch.full((len(rows), max(len(r) for r in rows)), -100, dtype=torch.long)  # (B, T)
    for i, r in enumerate(rows):
        labels[i, : len(r)] = torch.tensor(r)
    return labels


class FiDReader:
    """A T5-family model read the FiD way, with a pluggable passage encoder (FiD or LUMEN).

    Args:
        model: a transformers encoder-decoder (``T5ForConditionalGeneration`` or a T5-family sibling).
        tokenizer: its tokenizer (needs pad and end-of-sequence tokens).
        config: passages, truncation and decoding settings.
        encoder: what produces the decoder's memory; :class:`FiDEncoder` by default,
            :class:`rag.fid.lumen.LumenEncoder` for LUMEN.
    """

    def __init__(self, model, tokenizer, config: FiDConfig = FiDConfig(), encoder: PassageEncoder | None = None) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.config = config
        self.encoder = encoder if encoder is not None else FiDEncoder(model)
        self.resolved = None  # rag.models.ResolvedModel when loaded by from_pretrained

    @classmethod
    def from_pretrained(cls, path: str | Path, config: FiDConfig = FiDConfig(), device: str = "cpu") -> FiDReader:
        """Load a local model folder or locally cached HF id (weights + tokenizer) through
        :func:`rag.models.load_seq2seq`; nothing is downloaded. :attr:`resolved` records the folder
        and its revision (the LUMEN store key depends on it).

        Raises:
            ModelLoadError: ``path`` is not a loadable encoder-decoder model.
        """
        from rag.models import load_seq2seq

        model, tokenizer, resolved = load_seq2seq(path, device=device)
        reader = cls(model, tokenizer, config)
        reader.resolved = resolved
        return reader

    def tokenize(self, questions: Sequence[str], passages: Sequence[Sequence[str]], n_passages: int | None = None) -> FiDInputs:
        """Questions and their passage texts → a :class:`FiDInputs` batch under this reader's config
        (``n_passages`` rows per question, default the config's)."""
        c = self.config
        return tokenize(
            self.tokenizer, questions, passages, n_passages=n_passages or c.n_passages,
            max_question_tokens=c.max_question_tokens, max_passage_tokens=c.max_passage_tokens,
        )

    def forward(self, inputs: FiDInputs, labels: torch.Tensor):
        """Teacher-forced pass: the HF ``Seq2SeqLMOutput`` with ``loss`` and ``logits`` ``(B, T, V)``."""
        from transformers.modeling_outputs import BaseModelOutput

        h, mask = self.encoder(inputs)  # (B, N·L, d), (B, N·L)
        return self.model(
            encoder_outputs=BaseModelOutput(last_hidden_state=h), attention_mask=mask.long(), labels=labels.to(h.device)
        )

    @torch.no_grad()
    def generate(
        self, inputs: FiDInputs, *, num_beams: int | None = None, max_new_tokens: int | None = None, **generate_kwargs
    ):
        """Decode answers with transformers' ``generate`` (greedy when ``num_beams == 1``).

        Returns:
            ``(B, T)`` ids, or transformers' output object when ``generate_kwargs`` asks for one
            (e.g. ``return_dict_in_generate=True, output_scores=True``).
        """
        from transformers.modeling_outputs import BaseModelOutput

        h, mask = self.encoder(inputs)  # (B, N·L, d), (B, N·L)
        return self.model.generate(
            encoder_outputs=BaseModelOutput(last_hidden_state=h),
            attention_mask=mask.long(),
            num_beams=num_beams or self.config.num_beams,
            max_new_tokens=max_new_tokens or self.config.max_new_tokens,
            do_sample=False,
            **generate_kwargs,
        )

    def answer(self, questions: Sequence[str], passages: Sequence[Sequence[str]], **decoding) -> list[str]:
        """Answer each question from its passages (best first); ``decoding`` overrides ``num_beams``/``max_new_tokens``."""
        ids = self.generate(self.tokenize(questions, passages), **decoding)
        return [t.strip() for t in self.tokenizer.batch_decode(ids, skip_special_tokens=True)]
