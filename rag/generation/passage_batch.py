"""k single-passage prompts decoded side by side: one batched forward pass per step.

RAG-Sequence and RAG-Token (:mod:`rag.generation.rag_fusion`) condition the generator on each
retrieved passage *separately*: prompt ``z`` is ``prefix ‖ b_z ‖ q``. With cached passage states
each of those prompts costs only its question prefill (:func:`rag.generation.prefill.cached_prefill`);
what follows is decoding the same (RAG-Token, scoring) or different (RAG-Sequence) tokens after
every prompt. :class:`PassageBatch` puts the k prompt caches into one ``transformers`` ``Cache``
of batch size k, *left-padded* to the longest prompt, with a padding mask, and explicit position
ids per row, so a decoding step is one forward pass of shape ``(k, n)`` instead of k passes.

Padding never changes a row's result beyond float rounding: padded keys are masked out, and the
keys are already rotated to their positions, so where they sit in the buffer does not matter.
With ``k = 1`` the prompt's own cache is used as is (no copy, no mask), so a single passage
decodes exactly as plain generation does.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from rag.compat.transformers import cache_from_pairs, cache_layer_states, causal_lm_forward


class PassageBatch:
    """Caches of k prompts (one per passage), stepped together.

    Args:
        generator: the :class:`~rag.generation.generator.Generator` the prefills came from.
        prefills: one :class:`~rag.generation.prefill.Prefill` per passage, in passage order.

    Attributes:
        logits: next-token logits after each prompt, ``(k, V)`` float32.
        positions: position id of each row's next token, ``(k,)``.
        length: tokens in the batched cache (the longest prompt plus the tokens stepped since).
    """

    def __init__(self, generator, prefills: Sequence) -> None:
        if not prefills:
            raise ValueError("PassageBatch needs at least one prefill")
        self.generator = generator
        self.k = len(prefills)
        device = generator.device
        self.logits = torch.stack([p.logits.float() for p in prefills]).cpu()  # (k, V)
        self.positions = torch.tensor([p.next_position for p in prefills])  # (k,)
        if self.k == 1:
            self.cache, self.mask = prefills[0].cache, None
            self.length = int(cache_layer_states(self.cache)[0][0].shape[-2])
            return
        per_row = [cache_layer_states(p.cache) for p in prefills]  # k × n_layers × (1, H, T_z, d)
        lengths = [int(rows[0][0].shape[-2]) for rows in per_row]
        T = max(lengths)
        pairs = []
        for layer in range(len(per_row[0])):
            ks, vs = [], []
            for rows, n in zip(per_row, lengths):
                k, v = rows[layer]  # (1, H, n, d)
                pad = k.new_zeros(1, k.shape[1], T - n, k.shape[-1])  # (1, H, T - n, d)
                ks.append(torch.cat([pad, k], dim=-2))
                vs.append(torch.cat([pad.to(v.dtype), v], dim=-2))
            pairs.append((torch.cat(ks), torch.cat(vs)))  # (k, H, T, d) each
        self.cache = cache_from_pairs(pairs)
        self.mask = torch.stack([torch.arange(T) >= T - n for n in lengths]).long().to(device)  # (k, T)
        self.length = T

    @torch.inference_mode()
    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        """Feed ``tokens`` ``(k, n)`` (row ``z`` after prompt ``z``); returns their logits ``(k, n, V)`` float32 on CPU."""
        k, n = tokens.shape
        pos = (self.positions[:, None] + torch.arange(n)[None, :]).to(self.generator.device)  # (k, n)
        if self.mask is not None:
            self.mask = torch.cat([self.mask, self.mask.new_ones(k, n)], dim=1)  # (k, T + n)
        logits, self.cache = causal_lm_forward(self.generator.model, tokens.to(self.generator.device), pos, self.cache,
                                               attention_mask=self.mask)
        self.positions = self.positions + n
        self.length += n
        return logits.float().cpu()  # (k, n, V)

    def rewind(self, length: int) -> None:
        """Drop every token after the first ``length`` (back to the prompts: ``length`` as built)."""
        drop = self.length - length
        if drop <= 0:
            return
        self.cache.crop(-drop)
        if self.mask is not None:
            self.mask = self.mask[:, :length]
        self.positions = self.positions - drop
        self.length = length
