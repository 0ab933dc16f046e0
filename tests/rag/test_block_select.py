"""Dynamic block selection over cached passage blocks (tiny random models).

Hand-worked: attention mass per block on tensors worked by hand, and a block made dominant by
giving it the question's own query direction. Fast path equals slow path: m ≥ k is attending to
all; m < k equals a cached prefill over the selected blocks alone.
"""

from __future__ import annotations

import math

import pytest
import torch

from indexes.errors import InputError
from rag.generation.block_select import BlockSelectConfig, block_attention_mass, probe_queries, select_blocks
from rag.generation.kv_blocks import KVBlock, encode_block, encode_prefix
from rag.generation.paths import PathConfig, generate_tokens
from rag.generation.prefill import cached_prefill
from rag.generation.prompt import PromptBuilder
from rag.generation.sampling import SamplingConfig
from tests.rag.kv_tiny import tiny_generator

QUESTION = "why is the sky blue?"
PASSAGES = [("Rayleigh scattering", "The sky is blue because air scatters short wavelengths more than long ones."),
            ("Honey bees", "Bees dance to tell the hive where flowers are."),
            ("Disks", "Platters rotate under a head.")]


class _States:
    """Passage states held in memory, as ``PassageStates`` serves them."""

    def __init__(self, prefix, blocks):
        self._prefix, self._blocks, self.workspace = prefix, blocks, None

    def prefix(self):
        return self._prefix

    def blocks(self, ids):
        return [self._blocks[int(i)] for i in ids]


class _Hit:
    def __init__(self, i, title, text):
        self.id, self.title, self.text, self.score = str(i), title, text, 1.0


def _setup(gen):
    builder = PromptBuilder(gen)
    prefix = encode_prefix(gen, builder.prefix_ids)
    blocks = [encode_block(gen, prefix, builder.block_ids(t, x)) for t, x in PASSAGES]
    return builder, prefix, blocks


def test_mass_of_hand_worked_blocks():
    # Given one head, d = 2, two query tokens [1, 0] and [0, 1], a one-key prefix [0, 0] (score e⁰),
    # block A = {[1, 0]}, block B = {[0, 1]}: token 1 scores (e⁰, e¹, e⁰), token 2 (e⁰, e⁰, e¹)
    q = [torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])]  # (H=1, n=2, d=2)
    prefix = [torch.zeros(1, 1, 2)]
    blocks = [[torch.tensor([[[1.0, 0.0]]])], [torch.tensor([[[0.0, 1.0]]])]]
    # When
    mass = block_attention_mass(q, prefix, blocks, scaling=1.0)
    # Then each block gets (e/(e+2) + 1/(e+2)) / 2 of the mean mass
    expected = (math.e + 1) / (math.e + 2) / 2
    assert mass.tolist() == pytest.approx([expected, expected])


def test_grouped_query_heads_share_their_kv_head():
    # Given two query heads on one KV head: head 0 looks along x, head 1 along y
    q = [torch.tensor([[[5.0, 0.0]], [[0.0, 5.0]]])]  # (H_q=2, n=1, d=2)
    blocks = [[torch.tensor([[[1.0, 0.0]]])], [torch.tensor([[[0.0, 1.0]]])]]  # (H_kv=1, 1, 2)
    # When
    mass = block_attention_mass(q, [torch.zeros(1, 0, 2)], blocks, scaling=1.0)
    # Then by symmetry both blocks get half: e⁵/(e⁵+1) from one head, 1/(e⁵+1) from the other
    assert mass.tolist() == pytest.approx([0.5, 0.5])


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_selection_picks_the_block_made_dominant(arch):
    # Given three blocks, the last one's keys replaced by 30× the question's own probe query (mean over heads of its group)
    gen = tiny_generator(arch)
    builder, prefix, blocks = _setup(gen)
    question = builder.question_ids(QUESTION, 1)
    config = BlockSelectConfig(m=1)
    layers = config.probe_layers(gen.model.config.num_hidden_layers)
    q0 = prefix.length + max(b.length for b in blocks)
    queries, _ = probe_queries(gen, prefix, question, q0, layers)
    keys = blocks[2].keys.clone()  # (n_layers, H_kv, L, d)
    for q, layer in zip(queries, layers):
        direction = q.mean(dim=1).view(keys.shape[1], -1, q.shape[-1]).mean(dim=1)  # (H_kv, d)
        keys[layer] = 30 * direction[:, None, :] / direction.norm(dim=-1, keepdim=True)[:, None, :]
    blocks[2] = KVBlock(keys, blocks[2].values)
    # When
    keep, mass = select_blocks(gen, prefix, blocks, question, config)
    # Then it is the one kept, with most of the mass
    assert keep == [2] and mass[2] > 0.5 and mass[2] > 5 * max(mass[0], mass[1])


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_m_of_k_equals_a_cached_prefill_over_the_selected_blocks(arch):
    # Given three cached blocks, and the blocks a selection of m = 2 keeps
    gen = tiny_generator(arch)
    builder, prefix, blocks = _setup(gen)
    hits = [_Hit(i, t, x) for i, (t, x) in enumerate(PASSAGES)]
    keep, _ = select_blocks(gen, prefix, blocks, builder.question_ids(QUESTION, 2), BlockSelectConfig(2))
    sampling = SamplingConfig(max_new_tokens=6)
    # When the question is answered with --select-blocks 2
    used, tokens, _ = generate_tokens(gen, builder, QUESTION, hits, sampling,
                                      PathConfig(kv_cache=True, select=BlockSelectConfig(2)), _States(prefix, blocks))
    # Then it is the answer over those two blocks alone, cited in retrieval order
    alone = cached_prefill(gen, builder.segments(QUESTION, [PASSAGES[i] for i in keep]), prefix=prefix,
                           blocks=[blocks[i] for i in keep])
    assert [h.id for h in used] == [str(i) for i in keep] and keep == sorted(keep) and len(keep) == 2
    assert list(tokens) == list(gen.iter_tokens(alone, sampling))


@pytest.mark.parametrize("m", [3, 7])
def test_m_at_least_k_attends_to_all(m):
    # Given
    gen = tiny_generator("llama")
    builder, prefix, blocks = _setup(gen)
    hits = [_Hit(i, t, x) for i, (t, x) in enumerate(PASSAGES)]
    sampling = SamplingConfig(max_new_tokens=6)
    # When
    used, tokens, _ = generate_tokens(gen, builder, QUESTION, hits, sampling,
                                      PathConfig(kv_cache=True, select=BlockSelectConfig(m)), _States(prefix, blocks))
    # Then
    everything = cached_prefill(gen, builder.segments(QUESTION, PASSAGES), prefix=prefix, blocks=blocks)
    assert len(used) == 3 and list(tokens) == list(gen.iter_tokens(everything, sampling))


def test_selection_needs_the_cache_and_a_positive_m():
    with pytest.raises(InputError, match="--kv-cache"):
        PathConfig(kv_cache=False, select=BlockSelectConfig(2))
    with pytest.raises(InputError):
        BlockSelectConfig(0)
    with pytest.raises(InputError, match="out of range"):
        BlockSelectConfig(1, layers=(5,)).probe_layers(2)
