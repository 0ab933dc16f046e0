"""KV eviction (H2O, SnapKV) after a full prefill, and the retrieval budget (tiny random models).

Parity with a reference: the attention accumulated by the probes equals transformers' own eager
attention weights (``output_attentions``). Hand-worked: kept positions and block budgets on small
numbers. Exactness: a budget ≥ the prompt length keeps everything and decodes as no eviction.
"""

from __future__ import annotations

import copy

import pytest
import torch

from indexes.errors import InputError
from rag.generation.kv_evict import (EvictionConfig, attention_scores, blocks_within_budget, evict, evicted_prefill,
                                     eviction_scores, keep_positions, prefill_for_eviction)
from rag.generation.prefill import full_prefill
from rag.generation.prompt import PromptBuilder
from rag.generation.sampling import SamplingConfig
from rag.pipeline import AskConfig
from tests.rag.kv_tiny import tiny_generator

PASSAGES = [("Rayleigh scattering", "The sky is blue because air scatters short wavelengths more than long ones."),
            ("Honey bees", "Bees dance to tell the hive where flowers are.")]


def _ids(gen):
    return PromptBuilder(gen).segments("why is the sky blue?", PASSAGES).flat()


def _eager_attentions(gen, ids):
    """Every layer's attention weights ``(H_q, T, T)`` from transformers' eager attention."""
    model = copy.deepcopy(gen.model)
    model.set_attn_implementation("eager")
    with torch.inference_mode():
        out = model(input_ids=torch.tensor([ids]), output_attentions=True, use_cache=False)
    return [a[0].double() for a in out.attentions]


def test_keep_positions_hand_worked():
    # Given scores of six positions and a budget of 4 with 2 recent
    scores = torch.tensor([[5.0, 1.0, 4.0, 0.0, 2.0, 3.0], [0.0, 9.0, 1.0, 8.0, 7.0, 6.0]])
    # When
    kept = keep_positions(scores, budget=4, recent=2)
    # Then positions 4, 5 (recent) plus the two best of 0..3, per head, sorted
    assert kept.tolist() == [[0, 2, 4, 5], [1, 3, 4, 5]]
    assert keep_positions(scores, budget=6, recent=2).tolist() == [list(range(6))] * 2


def test_blocks_within_budget_hand_worked():
    # prefix 10 + question 5 leave 85 of 100: blocks 40 + 40 fit, the third (30) does not
    assert blocks_within_budget(10, [40, 40, 30], 5, 100) == 2
    assert blocks_within_budget(10, [40], 5, 14) == 0
    assert blocks_within_budget(10, [40, 40, 30], 5, 125) == 3


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
@pytest.mark.parametrize("policy", ["h2o", "snapkv"])
def test_scores_equal_eager_attention_weights(arch, policy):
    # Given a two-passage prompt and transformers' eager attention weights
    gen = tiny_generator(arch)
    ids = _ids(gen)
    T = len(ids)
    att = _eager_attentions(gen, ids)  # per layer (H_q, T, T)
    config = EvictionConfig(policy, budget=T // 2, window=8, kernel=3)
    # When the probes score every position
    _, cache, hidden = prefill_for_eviction(gen, ids)
    scores = eviction_scores(gen, cache, hidden, config)
    # Then H2O's are the column sums over every row, SnapKV's over the last 8 rows, max-pooled (width 3)
    for layer, a in enumerate(att):
        rows = a if policy == "h2o" else a[:, T - 8 :]
        ref = rows.sum(dim=1)  # (H_q, T)
        ref = ref.view(scores[layer].shape[0], -1, T).sum(dim=1)  # (H_kv, T) query heads of a group summed
        if policy == "snapkv":
            ref = torch.nn.functional.max_pool1d(ref[None], 3, stride=1, padding=1)[0]
        assert (scores[layer] - ref).abs().max().item() < 1e-4
        assert ref.max().item() > 1.0  # attention mass accumulates: the comparison is not of zeros


@pytest.mark.parametrize("policy", ["h2o", "snapkv"])
def test_evicted_cache_holds_the_kept_positions_states(policy):
    # Given
    gen = tiny_generator("llama")
    ids = _ids(gen)
    T, B = len(ids), 24
    config = EvictionConfig(policy, budget=B, window=8)
    att = _eager_attentions(gen, ids)
    # When
    _, cache, hidden = prefill_for_eviction(gen, ids)
    evicted, kept = evict(cache, eviction_scores(gen, cache, hidden, config), config)
    # Then each head keeps the recent positions and the best-scored others from the reference weights
    recent = B // 2 if policy == "h2o" else 8
    for layer, a in enumerate(att):
        rows = a if policy == "h2o" else a[:, T - 8 :]
        ref = rows.sum(dim=1).view(kept[layer].shape[0], -1, T).sum(dim=1)  # (H_kv, T)
        if policy == "snapkv":
            ref = torch.nn.functional.max_pool1d(ref[None], 7, stride=1, padding=3)[0]
        for h in range(ref.shape[0]):
            top = set(torch.topk(ref[h, : T - recent], B - recent).indices.tolist()) | set(range(T - recent, T))
            assert set(kept[layer][h].tolist()) == top
        k_full = cache.layers[layer].keys[0]  # (H_kv, T, d)
        k_kept = evicted.layers[layer].keys[0]  # (H_kv, B, d)
        for h in range(k_full.shape[0]):
            assert torch.equal(k_kept[h], k_full[h, kept[layer][h]])


@pytest.mark.parametrize("policy", ["h2o", "snapkv"])
def test_budget_at_least_the_prompt_equals_no_eviction(policy):
    # Given
    gen = tiny_generator("qwen2")
    ids = _ids(gen)
    sampling = SamplingConfig(max_new_tokens=8)
    plain = list(gen.iter_tokens(full_prefill(gen, PromptBuilder(gen).segments("why is the sky blue?", PASSAGES)), sampling))
    # When
    prefill, kept = evicted_prefill(gen, ids, EvictionConfig(policy, budget=len(ids) + 5))
    # Then every position is kept, in order, and decoding is token for token the same
    assert all(k.shape[-1] == len(ids) for k in kept)
    assert list(gen.iter_tokens(prefill, sampling)) == plain and len(plain) > 0


def test_a_small_budget_changes_decoding_state():
    # Given
    gen = tiny_generator("llama")
    ids = _ids(gen)
    # When
    full, _ = evicted_prefill(gen, ids, EvictionConfig("snapkv", budget=len(ids)))
    small, _ = evicted_prefill(gen, ids, EvictionConfig("snapkv", budget=12, window=4))
    # Then the first token's logits are the full prompt's in both (eviction follows the prefill), the cache is 12 long
    assert torch.allclose(full.logits, small.logits)
    assert small.cache.layers[0].keys.shape[-2] == 12 and small.next_position == len(ids)
    a, _ = gen.forward([5], torch.tensor([len(ids)]), full.cache)
    b, _ = gen.forward([5], torch.tensor([len(ids)]), small.cache)
    assert (a - b).abs().max().item() > 1e-3


def test_attention_scores_rows_sum_to_the_row_count():
    # Given random queries and keys; each softmax row sums to 1, so the column sums total the number of rows
    torch.manual_seed(0)
    q, k = torch.randn(4, 10, 8), torch.randn(2, 10, 8)
    # When
    s = attention_scores(q, k, 8**-0.5, range(3, 10), chunk=3)
    # Then (4 query heads × 7 rows) of mass, none on keys after the last row's position
    assert s.sum().item() == pytest.approx(28.0)
    assert s.shape == (2, 10)


def test_bad_eviction_settings_are_input_errors():
    with pytest.raises(InputError):
        EvictionConfig("lru", 10)
    with pytest.raises(InputError):
        EvictionConfig("h2o", 0)
    with pytest.raises(InputError):
        EvictionConfig("snapkv", 10, kernel=4)
    with pytest.raises(InputError, match="--evict"):
        AskConfig(kv_cache=True, eviction=EvictionConfig("h2o", 10))
