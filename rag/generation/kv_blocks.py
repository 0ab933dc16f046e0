"""Per-passage KV blocks behind a shared prefix, and their assembly into one prompt cache.

A prompt ``prefix ‖ b_1 ‖ … ‖ b_k ‖ q`` is attended with a *block* mask: the prefix is causal,
each passage block ``b_i`` sees itself causally (and the prefix when ``see_prefix``) but no other
block, and the question sees everything before it. Under that mask the states of ``b_i`` do not
depend on the other passages, so they are computed once, offline, at positions
``p .. p+L_i-1`` (``p`` = prefix length) and stored. At question time the blocks are concatenated
after the prefix and placed at positions by one of two schemes:

- ``rerotate`` (Block-Attention, Sun et al., 2024, arXiv:2409.15355, §3.2): block ``i`` moves to
  its real offset ``o_i = p + Σ_{j<i} L_j``; its keys are rotated by ``δ_i = o_i - p``
  (:func:`rag.generation.rope.rerotate`) and the question starts at ``p + Σ L_j``.
- ``composite`` (TurboRAG, Lu et al., 2024, arXiv:2410.07590, §3.2): every block keeps positions
  ``p .. p+L_i-1``; the question starts at ``p + max_i L_i``.

Exactness: with ``composite`` positions, or with ``see_prefix=False``, the cached path equals one
forward pass over the whole prompt with :func:`block_attention_mask` and :func:`layout_positions`
(RoPE attention depends on position differences only). With ``rerotate`` and ``see_prefix=True``
a moved block has seen the prefix from distance ``p`` rather than ``o_i``: that is the
Block-Attention approximation, and no single forward pass reproduces it (``k = 1`` is exact).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch

from rag.generation.rope import rerotate, rotary_module

Positions = Literal["rerotate", "composite"]


@dataclass(frozen=True)
class BlockLayout:
    """How passage blocks are encoded and placed.

    Attributes:
        positions: ``rerotate`` (Block-Attention) or ``composite`` (TurboRAG), see the module doc.
        see_prefix: blocks attend to the shared prefix when encoded. On by default: the prefix
            starts with the BOS token, the attention sink of most LLMs, and instructions
            condition the passage states (part of the cache key, fixed at build time).
    """

    positions: Positions = "rerotate"
    see_prefix: bool = True


@dataclass(frozen=True)
class KVBlock:
    """Keys and values of a token span, every layer: (n_layers, H_kv, L, d) each."""

    keys: torch.Tensor
    values: torch.Tensor

    @property
    def length(self) -> int:
        return int(self.keys.shape[-2])


def _as_cache(block: KVBlock | None, dtype: torch.dtype, device):
    from transformers import DynamicCache

    if block is None:
        return DynamicCache()
    k, v = block.keys.to(device, dtype), block.values.to(device, dtype)  # (n_layers, H, L, d)
    return DynamicCache(ddp_cache_data=[(k[i : i + 1], v[i : i + 1]) for i in range(k.shape[0])])


def _block_of(cache, start: int) -> KVBlock:
    keys = torch.cat([layer.keys[:, :, start:] for layer in cache.layers])  # (n_layers, H, L, d)
    values = torch.cat([layer.values[:, :, start:] for layer in cache.layers])  # (n_layers, H, L, d)
    return KVBlock(keys, values)


@torch.inference_mode()
def encode_prefix(generator, prefix_ids: Sequence[int]) -> KVBlock:
    """States of the shared prefix at positions ``0 .. p-1`` (plain causal attention)."""
    rotary_module(generator.model)  # refuse non-RoPE models before any work
    _, cache = generator.forward(list(prefix_ids))
    return _block_of(cache, 0)


@torch.inference_mode()
def encode_block(generator, prefix: KVBlock, ids: Sequence[int], see_prefix: bool = True) -> KVBlock:
    """States of one passage block at positions ``p .. p+L-1`` (``p`` = prefix length)."""
    p = prefix.length
    dtype = next(generator.model.parameters()).dtype
    cache = _as_cache(prefix if see_prefix else None, dtype, generator.device)
    _, cache = generator.forward(list(ids), torch.arange(p, p + len(ids)), cache)
    return _block_of(cache, p if see_prefix else 0)


def layout_positions(p: int, lengths: Sequence[int], n_question: int, positions: Positions) -> torch.Tensor:
    """Position id of every prompt token, (p + ΣL + n_question,)."""
    parts = [torch.arange(p)]
    offset = p
    for n in lengths:
        start = offset if positions == "rerotate" else p
        parts.append(torch.arange(start, start + n))
        offset += n
    q0 = offset if positions == "rerotate" else p + max(lengths, default=0)
    parts.append(torch.arange(q0, q0 + n_question))
    return torch.cat(parts)


def block_attention_mask(p: int, lengths: Sequence[int], n_question: int, see_prefix: bool = True) -> torch.Tensor:
    """Boolean mask (T, T), ``True`` where token ``t`` may attend to token ``s``."""
    seg = torch.cat([torch.zeros(p, dtype=torch.long)] + [torch.full((n,), i + 1) for i, n in enumerate(lengths)]
                    + [torch.full((n_question,), -1)])  # (T,) 0 prefix, i block, -1 question
    T = seg.numel()
    causal = torch.ones(T, T, dtype=torch.bool).tril()  # (T, T)
    same = seg[:, None] == seg[None, :]  # (T, T)
    to_prefix = (seg[None, :] == 0) & (torch.tensor(see_prefix) | (seg[:, None] == 0))  # (T, T)
    question = (seg == -1)[:, None].expand(T, T)  # (T, T) question rows see everything before
    return causal & (same | to_prefix | question)


def assemble(generator, prefix: KVBlock, blocks: Sequence[KVBlock], positions: Positions):
    """One ``DynamicCache`` for ``prefix ‖ b_1 ‖ … ‖ b_k`` and the question's first position.

    Returns:
        ``(cache, q0)``: the cache in the model's dtype and device; ``q0`` the position id of the
        first question token (see :func:`layout_positions`).
    """
    from transformers import DynamicCache

    model = generator.model
    dtype, device = next(model.parameters()).dtype, generator.device
    p = prefix.length
    keys, values = [prefix.keys.to(device, dtype)], [prefix.values.to(device, dtype)]
    offset = p
    for b in blocks:
        k = b.keys.to(device, dtype)  # (n_layers, H, L, d)
        keys.append(rerotate(k, offset - p, model) if positions == "rerotate" else k)
        values.append(b.values.to(device, dtype))
        offset += b.length
    K = torch.cat(keys, dim=-2)  # (n_layers, H, T, d)
    V = torch.cat(values, dim=-2)  # (n_layers, H, T, d)
    cache = DynamicCache(ddp_cache_data=[(K[i : i + 1], V[i : i + 1]) for i in range(K.shape[0])])
    q0 = offset if positions == "rerotate" else p + max((b.length for b in blocks), default=0)
    return cache, q0


@torch.inference_mode()
def block_mask_logits(generator, prefix_ids, block_ids, question_ids, layout: BlockLayout) -> torch.Tensor:
    """Reference: one forward pass with the block mask and layout positions → logits (T, V)."""
    lengths = [len(b) for b in block_ids]
    ids = list(prefix_ids) + [t for b in block_ids for t in b] + list(question_ids)
    pos = layout_positions(len(prefix_ids), lengths, len(question_ids), layout.positions)  # (T,)
    allowed = block_attention_mask(len(prefix_ids), lengths, len(question_ids), layout.see_prefix)  # (T, T)
    dtype = next(generator.model.parameters()).dtype
    mask = torch.zeros(allowed.shape, dtype=dtype).masked_fill(~allowed, torch.finfo(dtype).min)  # (T, T)
    x = torch.tensor([ids], device=generator.device)  # (1, T)
    out = generator.model(input_ids=x, position_ids=pos[None].to(generator.device),
                          attention_mask=mask[None, None].to(generator.device), use_cache=False)
    return out.logits[0]  # (T, V)
