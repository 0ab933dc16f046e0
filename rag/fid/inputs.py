"""Token layout of a Fusion-in-Decoder reader: one ``[question ; passage]`` row per passage.

FiD (Izacard & Grave, EACL 2021, §3) encodes each retrieved passage together with the question,
independently of the other passages. Here the question and each passage are tokenized
*separately* and the two id lists are joined without a gap::

    row(b, n) = q_ids(b) ++ p_ids(b, n) ++ pad        # length L = max over the batch

Tokenizing the two parts separately is what lets LUMEN (:mod:`rag.fid.lumen`) precompute a
passage's states once and join them with any question later; joining them without padding in
between keeps T5's relative positions identical on both paths, so LUMEN with every layer live
equals plain FiD exactly.

Example:
    >>> import torch
    >>> x = torch.tensor([[7, 0, 5, 6]]); m = torch.tensor([[1, 0, 1, 1]])
    >>> pack_left(x, m.bool())[0].tolist(), pack_left(x, m.bool())[1].int().tolist()
    ([[7, 5, 6, 0]], [[1, 1, 1, 0]])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from indexes.errors import InputError

#: FiD's passage text (Izacard & Grave 2021, §4): the same string in training, at question time,
#: in LUMEN memory and in the LUMEN store key, so stored memory can never disagree with it.
PASSAGE_FORMAT = "title: {title} context: {text}"


def passage_text(title: str, text: str) -> str:
    """The text a reader sees for a passage: :data:`PASSAGE_FORMAT` when titled, else the text alone."""
    return PASSAGE_FORMAT.format(title=title, text=text) if title else text


@dataclass(frozen=True)
class FiDInputs:
    """A tokenized FiD batch.

    Attributes:
        input_ids: ``(B, N, L)`` rows ``q ++ p`` right-padded with the pad id.
        attention_mask: ``(B, N, L)`` bool, True on real tokens.
        question_ids: ``(B, Lq)`` the questions alone, right-padded (LUMEN's question input).
        question_mask: ``(B, Lq)`` bool.
        passage_ids: ``(B, N, Lp)`` the passages alone, right-padded (LUMEN's memory input).
        passage_mask: ``(B, N, Lp)`` bool.
        present: ``(B, N)`` bool, False for the rows of a question that has fewer than ``N``
            passages; those rows hold the question alone and are hidden from the decoder.
        memory: ``(B, N, Lp, d)`` precomputed LUMEN memory of the passages, or None to compute it.
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    question_ids: torch.Tensor
    question_mask: torch.Tensor
    passage_ids: torch.Tensor
    passage_mask: torch.Tensor
    present: torch.Tensor
    memory: torch.Tensor | None = None

    def decoder_mask(self, encoder_mask: torch.Tensor) -> torch.Tensor:
        """The decoder's ``(B, N·L)`` cross-attention mask from the encoder's ``(B, N, L)`` one."""
        B, N, L = encoder_mask.shape
        return (encoder_mask & self.present.to(encoder_mask.device)[:, :, None]).reshape(B, N * L)


def pack_left(x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Move the masked-in entries of each row to its front, keeping their order.

    Args:
        x: ``(R, T)`` ids or ``(R, T, d)`` states.
        mask: ``(R, T)`` bool, True where ``x`` holds a real token.

    Returns:
        ``(x_packed, mask_packed)`` of the same shapes; padding (zeros/False) at the end of rows.
    """
    order = torch.argsort((~mask).to(torch.int8), dim=1, stable=True)  # (R, T) real tokens first
    mask_packed = torch.gather(mask, 1, order)  # (R, T)
    index = order if x.dim() == 2 else order.unsqueeze(-1).expand_as(x)
    x_packed = torch.gather(x, 1, index)
    zero = torch.zeros((), dtype=x.dtype, device=x.device)
    x_packed = torch.where(mask_packed if x.dim() == 2 else mask_packed.unsqueeze(-1), x_packed, zero)
    return x_packed, mask_packed


def _pad(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(1, max((len(r) for r in rows), default=1))
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)  # (R, T)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(list(r), dtype=torch.long)
    mask = torch.arange(width)[None, :] < torch.tensor([len(r) for r in rows])[:, None]  # (R, T)
    return ids, mask


def join_question_passages(
    question_ids: torch.Tensor, question_mask: torch.Tensor, passage_ids: torch.Tensor, passage_mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``row(b, n) = q(b) ++ p(b, n)`` without a gap: ``(B, Lq), (B, N, Lp) -> (B, N, Lq + Lp)``.

    Works on ids (``(B, Lq)``/``(B, N, Lp)``) and on states (``(B, Lq, d)``/``(B, N, Lp, d)``).
    """
    B, N = passage_ids.shape[:2]
    q = question_ids.unsqueeze(1).expand(B, N, *question_ids.shape[1:])  # (B, N, Lq[, d])
    x = torch.cat([q, passage_ids], dim=2)  # (B, N, Lq + Lp[, d])
    m = torch.cat([question_mask.unsqueeze(1).expand(B, N, -1), passage_mask], dim=2)  # (B, N, Lq + Lp)
    x, m = pack_left(x.reshape(B * N, *x.shape[2:]), m.reshape(B * N, -1))
    return x.reshape(B, N, *x.shape[1:]), m.reshape(B, N, -1)


def tokenize(
    tokenizer,
    questions: Sequence[str],
    passages: Sequence[Sequence[str]],
    *,
    n_passages: int,
    max_question_tokens: int,
    max_passage_tokens: int,
) -> FiDInputs:
    """Tokenize questions and their passages into a :class:`FiDInputs` batch.

    The question becomes ``"question: {q} context:"`` truncated to ``max_question_tokens``; each
    passage its tokens truncated to ``max_passage_tokens - 1`` plus the end-of-sequence token.
    The first ``n_passages`` passages of each question are used; a question with fewer gets rows
    holding the question alone, which the decoder does not see (``present``).

    Args:
        tokenizer: a transformers tokenizer with an ``eos_token_id`` (or ``sep_token_id``) and a pad id.
        questions: ``B`` question strings.
        passages: ``B`` lists of passage strings, best first.
        n_passages: ``N``, passages per question.
        max_question_tokens: ``Lq`` cap.
        max_passage_tokens: ``Lp`` cap, end-of-sequence token included.

    Raises:
        InputError: the batch is ragged or empty, or the tokenizer has no end/pad token.
    """
    if len(questions) != len(passages) or not questions:
        raise InputError(f"FiD batch: {len(questions)} questions but {len(passages)} passage lists")
    eos = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.sep_token_id
    pad = tokenizer.pad_token_id
    if eos is None or pad is None:
        raise InputError("FiD tokenizer: needs an end-of-sequence (or [SEP]) token and a pad token")

    def ids(texts: list[str]) -> list[list[int]]:
        return tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []

    q_rows = [r[:max_question_tokens] for r in ids([f"question: {q} context:" for q in questions])]
    flat = [p for ps in passages for p in list(ps)[:n_passages]]
    p_flat = iter([r[: max_passage_tokens - 1] + [eos] for r in ids(flat)])
    p_rows = [[next(p_flat) for _ in list(ps)[:n_passages]] for ps in passages]
    p_rows = [r + [[] for _ in range(n_passages - len(r))] for r in p_rows]  # empty rows for missing passages
    question_ids, question_mask = _pad(q_rows, pad)  # (B, Lq)
    p_ids, p_mask = _pad([p for r in p_rows for p in r], pad)  # (B·N, Lp)
    passage_ids = p_ids.reshape(len(questions), n_passages, -1)  # (B, N, Lp)
    passage_mask = p_mask.reshape(len(questions), n_passages, -1)
    input_ids, attention_mask = join_question_passages(question_ids, question_mask, passage_ids, passage_mask)
    input_ids = torch.where(attention_mask, input_ids, torch.full_like(input_ids, pad))  # (B, N, L)
    present = torch.tensor([[n < min(len(ps), n_passages) for n in range(n_passages)] for ps in passages])  # (B, N)
    return FiDInputs(input_ids, attention_mask, question_ids, question_mask, passage_ids, passage_mask, present)
