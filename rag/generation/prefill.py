"""The two ways to the first token: prefill everything, or prefill only the question.

``full_prefill`` runs the whole prompt ``prefix ‖ b_1 ‖ … ‖ b_k ‖ q`` through the model with
plain causal attention (standard RAG, and the fallback). ``cached_prefill`` assembles the stored
prefix and passage states (:mod:`rag.generation.kv_blocks`) and runs only ``q``, so its cost is
``O(|q|)`` forward work plus ``O(|q|·T)`` attention instead of ``O(T)`` forward work and
``O(T²)`` attention: the speed-up approaches ``T / |q|`` (TurboRAG, Lu et al., 2024,
arXiv:2410.07590, §4.3 reports 8.6× on average on GPU).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from rag.generation.kv_blocks import BlockLayout, KVBlock, Workspace, assemble, encode_block, encode_prefix
from rag.generation.prompt import PromptSegments


@dataclass(frozen=True)
class Prefill:
    """Model state after the prompt: where decoding starts.

    Attributes:
        logits: next-token logits after the last prompt token, (V,).
        cache: the ``transformers`` ``Cache`` holding every prompt token's keys and values.
        next_position: position id of the first generated token.
        prompt_tokens: prompt length in tokens.
        cached_tokens: prompt tokens whose states came from the passage store.
    """

    logits: torch.Tensor
    cache: Any
    next_position: int
    prompt_tokens: int
    cached_tokens: int = 0


def full_prefill(generator, segments: PromptSegments) -> Prefill:
    """Causal forward pass over the whole prompt at positions ``0 .. T-1``."""
    ids = segments.flat()
    logits, cache = generator.forward(ids, last_only=True)  # (1, V)
    return Prefill(logits=logits[-1], cache=cache, next_position=len(ids), prompt_tokens=len(ids))


BlockSource = Callable[[int, Sequence[int]], KVBlock | None]


def cached_prefill(
    generator,
    segments: PromptSegments,
    layout: BlockLayout = BlockLayout(),
    prefix: KVBlock | None = None,
    blocks: Sequence[KVBlock | None] | None = None,
    reserve: int = 256,
    workspace: Workspace | None = None,
) -> Prefill:
    """Question-only prefill over stored prefix and passage states.

    Args:
        generator: a :class:`~rag.generation.generator.Generator` with a RoPE model.
        segments: the prompt; its ``prefix`` and ``blocks`` must be the tokens the states were
            computed from.
        layout: block positions and whether blocks saw the prefix (as when they were built).
        prefix: stored prefix states; computed here when ``None``.
        blocks: stored states per passage (``None`` entries, or ``blocks=None``, are computed
            here: a passage missing from the cache costs one block encoding, not an error).
        reserve: cache capacity kept for generated tokens (``max_new_tokens``; grown if exceeded).
        workspace: memory to reuse for the assembled cache (``PassageStates.workspace``).

    Returns:
        The :class:`Prefill` after the question, with ``cached_tokens`` counting the states that
        were supplied rather than computed.
    """
    cached = 0
    if prefix is None:
        prefix = encode_prefix(generator, segments.prefix)
    else:
        cached += prefix.length
    given = list(blocks) if blocks is not None else [None] * len(segments.blocks)
    filled = []
    for ids, block in zip(segments.blocks, given, strict=True):
        if block is None:
            block = encode_block(generator, prefix, ids, layout.see_prefix)
        else:
            cached += block.length
        filled.append(block)
    cache, q0 = assemble(generator, prefix, filled, layout.positions, reserve=len(segments.question) + reserve,
                         workspace=workspace)
    q = list(segments.question)
    logits, cache = generator.forward(q, torch.arange(q0, q0 + len(q)), cache, last_only=True)  # (1, V)
    total = prefix.length + sum(b.length for b in filled) + len(q)
    return Prefill(logits=logits[-1], cache=cache, next_position=q0 + len(q), prompt_tokens=total, cached_tokens=cached)
