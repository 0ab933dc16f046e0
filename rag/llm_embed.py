"""Sentence embeddings from a decoder-only (causal) LM: PromptEOL, Echo, and mean pooling.

A causal LM's hidden state at position ``t`` has read only tokens ``≤ t``, so the usual encoder
poolings see too little. Three remedies, all without training, over the last layer's hidden
states ``h_t`` (``(L, d)``, after the model's final norm):

* **PromptEOL** (Jiang et al., "Scaling Sentence Embeddings with Large Language Models",
  arXiv:2307.16645, §3.1, "explicit one word limitation"): the text ``x`` is put in the prompt
  ``This sentence : "x" means in one word:"`` and the embedding is the hidden state of the
  **last** prompt token, ``e = h_L``: the model has read the whole text and is about to say it
  in one word.
* **Echo** (Springer, Kotha, Fried, Neubig, Raghunathan, "Repetition Improves Language Model
  Embeddings", arXiv:2402.15449, §3): the text is given twice,
  ``Rewrite the sentence: x, rewritten sentence: x``, and the embedding is the **mean over the
  second copy's tokens** only, ``e = 1/|x| Σ_{t ∈ copy 2} h_t``: every token of the second copy
  can attend to the whole text through the first copy.
* **mean**: ``e = 1/|x| Σ_t h_t`` over the text's tokens alone (no prompt), the classic encoder
  pooling, the baseline the two papers improve on.

``e`` is L2-normalised, so inner product = cosine as for every dense index here. The prompt
pieces and the text are tokenised separately and concatenated, so the two copies of Echo are
identical token sequences and the pooled positions are known exactly. Batches are right-padded:
a causal LM's states at real tokens never see the padding to their right, so a text's vector does
not depend on its batch (to float rounding; tested).

:class:`LLMEmbedder` offers the part of ``SentenceTransformer``'s surface that
:class:`rag.encoder.Encoder` uses (``encode``, ``tokenizer``, ``max_seq_length``, the dimension),
so an ``llm:MODEL`` encoder indexes, searches, windows and serves like any other.

Example:
    (Not run as a doctest: needs a local causal LM.)
    >>> emb = LLMEmbedder.load("llm:smollm2", "echo")                           # doctest: +SKIP
    >>> emb.encode(["statins lower LDL"], normalize_embeddings=True).shape      # doctest: +SKIP
    (1, 576)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

from typing import TYPE_CHECKING

import numpy as np

from indexes.errors import InputError

if TYPE_CHECKING:
    import torch

Pooling = Literal["prompteol", "echo", "mean"]
POOLINGS: tuple[str, ...] = get_args(Pooling)
LLM_PREFIX = "llm:"  # --encoder llm:MODEL: MODEL is any name rag.models resolves as a causal LM

# (before the text, between the copies or after the text, after the second copy); None: no second copy
TEMPLATES: dict[str, tuple[str, str | None, str]] = {
    "prompteol": ('This sentence : "', None, '" means in one word:"'),
    "echo": ("Rewrite the sentence: ", ", rewritten sentence: ", ""),
    "mean": ("", None, ""),
}


def is_llm_model(name: str) -> bool:
    """Whether an encoder name asks for a causal LM's embeddings (``llm:MODEL``)."""
    return str(name).startswith(LLM_PREFIX)


@dataclass(frozen=True)
class PooledInput:
    """One text laid out for the model: its ``ids`` and the ``(start, stop)`` positions pooled."""

    ids: list[int]
    pool: tuple[int, int]


def leading_special_tokens(tokenizer) -> list[int]:
    """The special tokens the tokenizer puts before a text (a BOS or CLS; none for SmolLM2)."""
    full, bare = tokenizer("a")["input_ids"], tokenizer("a", add_special_tokens=False)["input_ids"]
    for i in range(len(full) - len(bare) + 1):
        if full[i : i + len(bare)] == bare:
            return list(full[:i])
    return []


def _stand_in(tokenizer) -> list[int]:
    """The one token an empty text is read as: end-of-sequence, else unknown, else padding."""
    for t in (tokenizer.eos_token_id, tokenizer.unk_token_id, tokenizer.pad_token_id, 0):
        if t is not None:
            return [int(t)]
    return [0]


def layout(tokenizer, text: str, pooling: Pooling, max_text_tokens: int) -> PooledInput:
    """Token ids of ``text`` in ``pooling``'s template and the span of positions to pool.

    The text is cut to ``max_text_tokens`` tokens (an empty one is read as one end-of-sequence
    token); the tokenizer's leading special tokens (a BOS, if it adds one) come first. PromptEOL pools the last position, Echo the second copy, mean the text.
    """
    before, between, after = TEMPLATES[pooling]
    piece = lambda s: tokenizer(s, add_special_tokens=False)["input_ids"] if s else []  # noqa: E731
    x = piece(text)[:max_text_tokens] or _stand_in(tokenizer)  # an empty text still gets a position to pool
    ids = leading_special_tokens(tokenizer) + piece(before)  # [BOS] + prompt
    start = len(ids)
    ids += x
    if between is not None:
        ids += piece(between)
        start = len(ids)
        ids += x  # the echo: the same token sequence again
    stop = len(ids)
    ids += piece(after)
    if pooling == "prompteol":
        return PooledInput(ids, (len(ids) - 1, len(ids)))
    return PooledInput(ids, (start, stop))


class LLMEmbedder:
    """A causal LM used as a sentence encoder with one pooling.

    Args:
        model: a transformers ``*ForCausalLM`` (its ``base_model`` gives the final hidden states).
        tokenizer: its tokenizer.
        pooling: ``prompteol``, ``echo`` or ``mean``.
        max_seq_length: text tokens read per text (the template's own tokens come on top; Echo
            reads the text twice); :meth:`rag.encoder.Encoder.passage_windows` cuts longer
            passages into windows of this size.

    Raises:
        InputError: an unknown pooling.
    """

    def __init__(self, model, tokenizer, pooling: Pooling, max_seq_length: int = 256) -> None:
        if pooling not in POOLINGS:
            raise InputError(f"--llm-pooling {pooling!r}: choose one of {', '.join(POOLINGS)}")
        self.model, self.tokenizer, self.pooling = model, tokenizer, pooling
        self.max_seq_length = max_seq_length  # 256: MiniLM's window, and 2 × 256 + prompt for Echo on CPU

    @classmethod
    def load(cls, name: str, pooling: Pooling, device: str | None = None):
        """Load ``llm:MODEL`` through :func:`rag.models.load_causal_lm`: ``(embedder, resolved)``.

        Raises:
            ModelLoadError: MODEL is not a local causal LM.
        """
        from rag.models import load_causal_lm

        model, tokenizer, resolved = load_causal_lm(name[len(LLM_PREFIX):], device=device or "cpu")
        return cls(model, tokenizer, pooling), resolved

    @property
    def device(self) -> torch.device:
        return self.model.device

    def eval(self) -> LLMEmbedder:
        self.model.eval()
        return self

    def get_sentence_embedding_dimension(self) -> int:
        return int(self.model.config.hidden_size)

    def embed(self, inputs: Sequence[PooledInput]) -> torch.Tensor:
        """Pooled, unnormalised embeddings ``(B, d)`` of laid-out texts, in one right-padded batch."""
        import torch

        B, L = len(inputs), max(len(x.ids) for x in inputs)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        ids = torch.full((B, L), pad, dtype=torch.long)  # (B, L)
        mask = torch.zeros(B, L, dtype=torch.long)  # (B, L)
        weights = torch.zeros(B, L)  # (B, L): 1/|span| on the pooled positions
        for i, x in enumerate(inputs):
            ids[i, : len(x.ids)] = torch.tensor(x.ids)
            mask[i, : len(x.ids)] = 1
            a, b = x.pool
            weights[i, a:b] = 1.0 / (b - a)
        with torch.no_grad():
            h = self.model.base_model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device)).last_hidden_state
        return torch.einsum("bl,bld->bd", weights.to(h.device, h.dtype), h).float()  # (B, d)

    def encode(self, texts: Sequence[str], batch_size: int = 16, normalize_embeddings: bool = True,
               convert_to_numpy: bool = True, show_progress_bar: bool = False) -> np.ndarray:
        """``(N, d)`` float32 embeddings of ``texts``, in length-sorted batches of ``batch_size``
        (the ``SentenceTransformer.encode`` arguments :class:`rag.encoder.Encoder` passes)."""
        import torch

        inputs = [layout(self.tokenizer, t, self.pooling, self.max_seq_length) for t in texts]
        out = np.zeros((len(texts), self.get_sentence_embedding_dimension()), dtype=np.float32)  # (N, d)
        order = sorted(range(len(texts)), key=lambda i: len(inputs[i].ids))
        bar = None
        if show_progress_bar:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(texts), desc="encode", unit="text")
        for s in range(0, len(order), batch_size):
            rows = order[s : s + batch_size]
            e = self.embed([inputs[i] for i in rows])  # (b, d)
            if normalize_embeddings:
                e = torch.nn.functional.normalize(e, dim=-1)
            out[rows] = e.cpu().numpy()
            if bar is not None:
                bar.update(len(rows))
        if bar is not None:
            bar.close()
        return out
