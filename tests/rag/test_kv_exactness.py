"""Fast path == slow path: cached passage states reproduce a full forward pass (fp32, tiny random models).

The reference is one forward pass over ``prefix ‖ b_1 ‖ … ‖ b_k ‖ q`` with the block attention
mask and the layout's position ids (``block_mask_logits``); the cached path computes the blocks
separately, (re)positions them and prefills only ``q``.
"""

from __future__ import annotations

import pytest
import torch

from rag.generation.kv_blocks import BlockLayout, block_attention_mask, block_mask_logits, layout_positions
from rag.generation.prefill import cached_prefill, full_prefill
from rag.generation.prompt import PromptBuilder
from rag.generation.rope import rerotate, rope_cos_sin
from tests.rag.kv_tiny import tiny_generator

PASSAGES = [
    ("Rayleigh scattering", "The sky is blue because air scatters short wavelengths more than long ones."),
    ("Honey bees", "Bees dance to tell the hive where flowers are."),
    ("Disks", "Platters rotate under a head."),
]
QUESTION = "why is the sky blue?"
TOL = 1e-4


def _segments(gen, passages=PASSAGES):
    return PromptBuilder(gen).segments(QUESTION, passages)


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
@pytest.mark.parametrize("layout", [BlockLayout("composite", see_prefix=True), BlockLayout("composite", see_prefix=False),
                                    BlockLayout("rerotate", see_prefix=False)], ids=str)
def test_cached_question_logits_equal_block_mask_forward(arch, layout):
    # Given a tiny random model and a three-passage prompt
    gen = tiny_generator(arch)
    seg = _segments(gen)
    # When the question is prefilled over separately computed, positioned blocks
    cached = cached_prefill(gen, seg, layout)
    reference = block_mask_logits(gen, seg.prefix, seg.blocks, seg.question, layout)  # (T, V)
    # Then its last logits equal the one-pass forward with the block mask and position ids
    assert (cached.logits - reference[-1]).abs().max().item() <= TOL
    assert reference[-1].std().item() > 0.5  # logits are O(1): the tolerance is meaningful


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_rerotated_blocks_differ_from_unrotated(arch):
    # Given blocks encoded without the prefix (the exact Block-Attention setting)
    gen = tiny_generator(arch)
    seg = _segments(gen)
    reference = block_mask_logits(gen, seg.prefix, seg.blocks, seg.question, BlockLayout("rerotate", see_prefix=False))
    # When the keys are left at their encoding positions (composite) instead of re-rotated
    wrong = cached_prefill(gen, seg, BlockLayout("composite", see_prefix=False))
    # Then the logits are far from the reference: the comparison above can fail
    assert (wrong.logits - reference[-1]).abs().max().item() > 1e-2


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
@pytest.mark.parametrize("positions", ["rerotate", "composite"])
def test_single_passage_cached_equals_plain_full_prefill(arch, positions):
    # Given one passage: the block mask is then the plain causal mask
    gen = tiny_generator(arch)
    seg = _segments(gen, PASSAGES[:1])
    # When
    cached = cached_prefill(gen, seg, BlockLayout(positions))
    full = full_prefill(gen, seg)
    # Then
    assert (cached.logits - full.logits).abs().max().item() <= TOL
    assert cached.next_position == full.next_position == full.prompt_tokens


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_rerotate_moves_a_key_to_the_new_position(arch):
    # Given a raw key vector and RoPE angles from the model's own rotary module
    gen = tiny_generator(arch)
    k = torch.randn(2, 5, 16)  # (H, L, d)
    cos, sin = rope_cos_sin(gen.model, torch.arange(10, 15))  # (L, d)
    cos2, sin2 = rope_cos_sin(gen.model, torch.arange(47, 52))  # (L, d)

    def rope(x, c, s):
        x1, x2 = x.chunk(2, dim=-1)
        return x * c + torch.cat((-x2, x1), dim=-1) * s

    # When a key encoded at positions 10..14 is rotated by δ = 37
    moved = rerotate(rope(k, cos, sin), 37, gen.model)
    # Then it equals the key encoded at 47..51 directly: R(δ)·R(m) = R(m + δ)
    assert torch.allclose(moved, rope(k, cos2, sin2), atol=1e-5)


def test_block_mask_and_positions_hand_worked():
    # Given prefix p=2, blocks of lengths 2 and 1, a 2-token question
    # When
    allowed = block_attention_mask(2, [2, 1], 2, see_prefix=True)
    # Then block 2 (token 4) sees the prefix and itself but not block 1 (tokens 2, 3)
    assert allowed[4].tolist() == [True, True, False, False, True, False, False]
    assert allowed[6].tolist() == [True] * 7  # the question sees everything
    assert layout_positions(2, [2, 1], 2, "rerotate").tolist() == [0, 1, 2, 3, 4, 5, 6]
    assert layout_positions(2, [2, 1], 2, "composite").tolist() == [0, 1, 2, 3, 2, 4, 5]
