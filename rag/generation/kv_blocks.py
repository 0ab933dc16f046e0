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

import math
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch

from rag.compat.transformers import DynamicLayer, cache_from_layers, cache_from_states
from rag.generation.rope import rerotate_, rotary_module

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
    if block is None:
        return cache_from_states(None, None)
    return cache_from_states(block.keys.to(device, dtype), block.values.to(device, dtype))  # (n_layers, H, L, d)


def _block_of(cache, start: int) -> KVBlock:
    keys = torch.cat([layer.keys[:, :, start:] for layer in cache.layers])  # (n_layers, H, L, d)
    values = torch.cat([layer.values[:, :, start:] for layer in cache.layers])  # (n_layers, H, L, d)
    return KVBlock(keys, values)


@torch.inference_mode()
def encode_prefix(generator, prefix_ids: Sequence[int]) -> KVBlock:
    """States of the shared prefix at positions ``0 .. p-1`` (plain causal attention)."""
    rotary_module(generator.model)  # refuse non-RoPE models before any work
    _, cache = generator.forward(list(prefix_ids), last_only=True)
    return _block_of(cache, 0)


@torch.inference_mode()
def encode_block(generator, prefix: KVBlock, ids: Sequence[int], see_prefix: bool = True) -> KVBlock:
    """States of one passage block at positions ``p .. p+L-1`` (``p`` = prefix length)."""
    p = prefix.length
    dtype = next(generator.model.parameters()).dtype
    cache = _as_cache(prefix if see_prefix else None, dtype, generator.device)
    _, cache = generator.forward(list(ids), torch.arange(p, p + len(ids)), cache, last_only=True)
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


class AssembledLayer(DynamicLayer):
    """A ``DynamicLayer`` over a preallocated (1, H, capacity, d) buffer.

    ``DynamicLayer`` copies its states on construction and concatenates on every update (a full
    copy of the cache per generated token). This subclass, through the documented
    ``CacheLayerMixin`` interface, takes the assembled prompt states without a copy and writes
    new tokens into spare capacity (doubling it when full); ``keys``/``values`` stay exact-length
    views, so masks and attention see precisely what a ``DynamicLayer`` would.
    """

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, length: int) -> None:
        super().__init__()
        self.dtype, self.device = keys.dtype, keys.device
        self._k, self._v, self._n = keys, values, length  # (1, H, capacity, d) each
        self.keys, self.values = keys[:, :, :length], values[:, :, :length]  # (1, H, n, d) views
        self.is_initialized = True

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        n, m = self._n, key_states.shape[-2]
        if n + m > self._k.shape[-2]:
            grow = max(n + m, 2 * self._k.shape[-2]) - self._k.shape[-2]
            self._k = torch.cat([self._k, self._k.new_empty(*self._k.shape[:2], grow, self._k.shape[-1])], dim=-2)
            self._v = torch.cat([self._v, self._v.new_empty(*self._v.shape[:2], grow, self._v.shape[-1])], dim=-2)
        self._k[:, :, n : n + m].copy_(key_states)
        self._v[:, :, n : n + m].copy_(value_states)
        self._n = n + m
        self.keys, self.values = self._k[:, :, : self._n], self._v[:, :, : self._n]
        return self.keys, self.values

    def crop(self, tokens_to_remove: int) -> None:
        if tokens_to_remove < 0:
            self._n = max(0, self._n + tokens_to_remove)
            self.keys, self.values = self._k[:, :, : self._n], self._v[:, :, : self._n]


class Workspace:
    """Reusable memory for assembled caches, one buffer pair at a time.

    An assembled cache is ~100 MB per question for a 100M model (2k tokens, fp32); fresh memory
    of that size costs page faults on first touch, about as much as filling it. A workspace
    hands its buffers to one cache at a time and takes them back when that cache is garbage
    collected; if they are still in use (concurrent questions) fresh memory is allocated.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._free: tuple[torch.Tensor, torch.Tensor] | None = None

    def take(self, numel: int, dtype: torch.dtype, device) -> tuple[torch.Tensor, torch.Tensor]:
        """Two flat buffers of at least ``numel`` elements."""
        with self._lock:
            buf, self._free = self._free, None
        if buf is None or buf[0].numel() < numel or buf[0].dtype != dtype or buf[0].device != torch.device(device):
            buf = tuple(torch.empty(numel, dtype=dtype, device=device) for _ in range(2))
        return buf

    def give_back(self, buf: tuple[torch.Tensor, torch.Tensor]) -> None:
        with self._lock:
            if self._free is None or self._free[0].numel() < buf[0].numel():
                self._free = buf


def assemble(generator, prefix: KVBlock, blocks: Sequence[KVBlock], positions: Positions, reserve: int = 256,
             workspace: Workspace | None = None):
    """One ``Cache`` for ``prefix ‖ b_1 ‖ … ‖ b_k`` and the question's first position.

    Args:
        generator: the generator whose model the states belong to.
        prefix: the shared prefix states.
        blocks: passage states, in prompt order.
        positions: ``rerotate`` or ``composite`` (see the module doc).
        reserve: spare capacity for the question and generated tokens (grown if exceeded).
        workspace: reuse its memory (see :class:`Workspace`); default: fresh memory.

    Returns:
        ``(cache, q0)``: a ``transformers.Cache`` of :class:`AssembledLayer` s in the model's dtype
        and device; ``q0`` the position id of the first question token.
    """
    model = generator.model
    dtype, device = next(model.parameters()).dtype, generator.device
    p, lengths = prefix.length, [b.length for b in blocks]
    n_layers, H, _, d = prefix.keys.shape
    T = p + sum(lengths)
    shape = (n_layers, 1, H, T + reserve, d)
    flat = (workspace or Workspace()).take(math.prod(shape), dtype, device)
    K = flat[0][: math.prod(shape)].view(shape)  # (n_layers, 1, H, capacity, d)
    V = flat[1][: math.prod(shape)].view(shape)  # (n_layers, 1, H, capacity, d)
    K[:, 0, :, :p].copy_(prefix.keys)
    V[:, 0, :, :p].copy_(prefix.values)
    offset = p
    for b in blocks:  # write each block in place: one pass to convert, one to rotate
        k = K[:, 0, :, offset : offset + b.length].copy_(b.keys)  # (n_layers, H, L_i, d) view
        if positions == "rerotate":
            rerotate_(k, offset - p, model)
        V[:, 0, :, offset : offset + b.length].copy_(b.values)
        offset += b.length
    cache = cache_from_layers([AssembledLayer(K[i], V[i], T) for i in range(n_layers)])
    if workspace is not None:
        weakref.finalize(cache, workspace.give_back, flat)
    q0 = offset if positions == "rerotate" else p + max(lengths, default=0)
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
