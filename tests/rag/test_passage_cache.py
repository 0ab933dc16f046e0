"""The passage KV cache: states built into an index and read from disk reproduce the one-pass
forward, the manifest record, and clear errors for states that do not fit (another model or template,
a model without RoPE). The store's own round trip is tested in tests/indexes/test_kv_store.py."""

from __future__ import annotations

import pytest
import torch

from indexes.errors import InputError
from indexes.manifest import Manifest
from indexes.segmented import open_passage_store
from rag.generation.cache_build import build_passage_cache
from rag.generation.kv_blocks import BlockLayout, block_mask_logits
from rag.generation.passage_cache import CacheConfig, open_passage_states
from rag.generation.prefill import cached_prefill
from rag.generation.prompt import PromptBuilder, PromptTemplate
from tests.rag.kv_tiny import tiny_generator, write_corpus


@pytest.fixture(scope="module")
def bm25_index(tmp_path_factory):
    from rag.indexer import IndexOptions, build_index

    root = tmp_path_factory.mktemp("kvidx")
    build_index(write_corpus(root / "corpus.jsonl"), root / "index", IndexOptions(encoder=None, progress=False))
    return root / "index"


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_cached_path_from_disk_equals_block_mask_forward(bm25_index, arch):
    # Given a float32 cache of every passage built into the index
    gen = tiny_generator(arch)
    config = CacheConfig(dtype="float32")
    report = build_passage_cache(bm25_index, gen, config, progress=False)
    states = open_passage_states(bm25_index, gen, config)
    passages = open_passage_store(bm25_index).get([2, 0])
    seg = PromptBuilder(gen).segments("why is the sky blue?", [(p.title, p.text) for p in passages])
    layout = BlockLayout("composite")
    # When the question is prefilled over the states read from disk
    prefill = cached_prefill(gen, seg, layout, states.prefix(), states.blocks([p.id for p in passages]))
    reference = block_mask_logits(gen, seg.prefix, seg.blocks, seg.question, layout)
    # Then it matches the one-pass reference, and every prompt token but the question came from disk
    assert (prefill.logits - reference[-1]).abs().max().item() <= 1e-4
    assert prefill.cached_tokens == len(seg.prefix) + sum(map(len, seg.blocks))
    info = next(c for c in Manifest.read(bm25_index).caches if c.key == report.info.key)
    assert info.kind == "kv" and info.passages == 4 and info.dtype == "float32"
    # and building again encodes nothing
    assert build_passage_cache(bm25_index, gen, config, progress=False).encoded == 0


def test_missing_passage_is_computed_on_the_fly(bm25_index):
    # Given a cache that lacks one of the prompt's passages
    gen = tiny_generator("llama")
    config = CacheConfig(dtype="float32")
    build_passage_cache(bm25_index, gen, config, progress=False)
    states = open_passage_states(bm25_index, gen, config)
    seg = PromptBuilder(gen).segments("q?", [("Rayleigh scattering", "unseen text"), ("t", "another unseen passage")])
    # When
    blocks = states.blocks(["not-in-cache", "also-missing"])
    prefill = cached_prefill(gen, seg, BlockLayout(), states.prefix(), blocks)
    # Then those blocks were encoded instead of failing, exactly as with no cache at all
    assert blocks == [None, None] and prefill.cached_tokens == len(seg.prefix)
    assert torch.allclose(prefill.logits, cached_prefill(gen, seg, BlockLayout()).logits, atol=1e-5)


def test_cache_of_another_model_or_template_is_refused(bm25_index):
    # Given a cache built for the llama model with the default template
    build_passage_cache(bm25_index, tiny_generator("llama"), CacheConfig(dtype="float32"), progress=False)
    # When another model, or the same model with another template, asks for it
    # Then the error names the problem and the fix
    with pytest.raises(InputError, match="another model or prompt template.*rag cache build"):
        open_passage_states(bm25_index, tiny_generator("llama", seed=1), CacheConfig(dtype="float32"))
    with pytest.raises(InputError, match="another model or prompt template"):
        open_passage_states(bm25_index, tiny_generator("llama"), CacheConfig(dtype="float32", template=PromptTemplate(passage="{text}")))


def test_model_without_rotary_positions_is_refused(bm25_index):
    # Given a GPT-2 (learned absolute positions)
    from transformers import GPT2Config, GPT2LMHeadModel

    from rag.generation.generator import Generator

    gpt2 = Generator(GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=30522)), tiny_generator().tokenizer, name="gpt2-tiny")
    # When / Then
    with pytest.raises(InputError, match="no rotary position embeddings"):
        build_passage_cache(bm25_index, gpt2, progress=False)


def test_a_store_in_another_dtype_of_the_same_model_fits(bm25_index):
    # Given a bfloat16 cache for the qwen2 model
    gen = tiny_generator("qwen2")
    build_passage_cache(bm25_index, gen, CacheConfig(dtype="bfloat16"), progress=False, limit=1)
    # When the default (float16) configuration asks for states
    states = open_passage_states(bm25_index, gen, CacheConfig(template=PromptTemplate()))
    # Then the bfloat16 store is used
    assert states.store.spec.dtype == "bfloat16" and len(states.store) == 1
