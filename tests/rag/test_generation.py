"""The generator: its decoding loop matches transformers' ``generate``; sampling, stop strings,
chat templates, and decoding after a cached prefill."""

from __future__ import annotations

import copy

import torch

from rag.generation.generator import Generator
from rag.generation.kv_blocks import BlockLayout
from rag.generation.prefill import Prefill, cached_prefill, full_prefill
from rag.generation.prompt import PromptBuilder, PromptTemplate
from rag.generation.sampling import SamplingConfig
from tests.rag.kv_tiny import tiny_generator


def _prefill(gen, ids):
    logits, cache = gen.forward(ids)
    return Prefill(logits=logits[-1], cache=cache, next_position=len(ids), prompt_tokens=len(ids))


def test_greedy_loop_equals_transformers_generate():
    # Given a prompt and the tiny Llama
    gen = tiny_generator("llama")
    ids = gen.encode("the sky is blue because")
    # When both decode greedily for 12 tokens
    ours = list(gen.iter_tokens(_prefill(gen, ids), SamplingConfig(max_new_tokens=12)))
    ref = gen.model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                             max_new_tokens=12, do_sample=False)[0, len(ids):].tolist()
    # Then the tokens agree (generate also emits the end-of-sequence token, we stop before it)
    assert ours == [t for t in ref if t not in gen.eos_ids][: len(ours)] and len(ours) >= 1


def test_sampling_is_reproducible_and_top_k_1_is_greedy():
    # Given
    gen = tiny_generator("qwen2")
    ids = gen.encode("bees dance")
    sampled = SamplingConfig(max_new_tokens=8, temperature=0.9, top_p=0.9, seed=3)
    # When
    a = list(gen.iter_tokens(_prefill(gen, ids), sampled))
    b = list(gen.iter_tokens(_prefill(gen, ids), sampled))
    k1 = list(gen.iter_tokens(_prefill(gen, ids), SamplingConfig(max_new_tokens=8, temperature=1.5, top_k=1, seed=0)))
    greedy = list(gen.iter_tokens(_prefill(gen, ids), SamplingConfig(max_new_tokens=8)))
    # Then
    assert a == b
    assert k1 == greedy


def test_stop_string_cuts_the_answer_before_it():
    # Given the greedy continuation of a prompt
    gen = tiny_generator("llama")
    config = SamplingConfig(max_new_tokens=16)
    full = gen.complete("why is the sky blue?", config)
    stop = full[len(full) // 2 : len(full) // 2 + 3]
    assert len(full) > 6 and stop.strip()
    # When the same decoding has that stop string
    cut = gen.complete("why is the sky blue?", SamplingConfig(max_new_tokens=16, stop=(stop,)))
    # Then the text ends right before its first occurrence
    assert cut == full[: full.find(stop)]


def test_chat_template_puts_passages_in_the_user_turn():
    # Given a tokenizer with a chat template
    base = tiny_generator("llama")
    tok = copy.deepcopy(base.tokenizer)
    tok.chat_template = ("{% for m in messages %}<{{ m['role'] }}> {{ m['content'] }} </{{ m['role'] }}> {% endfor %}"
                         "{% if add_generation_prompt %}<assistant>{% endif %}")
    gen = Generator(base.model, tok, name="chat")
    template = PromptTemplate(system="answer briefly")
    # When the prompt is segmented
    seg = PromptBuilder(gen, template).segments("why?", [("t", "some passage")])
    # Then the prefix ends inside the user turn and the question closes it and opens the reply
    head, tail = tok.decode(seg.prefix), tok.decode(seg.question)
    assert "answer briefly" in head and head.rstrip().endswith("< user >")
    assert tail.rstrip().endswith("< / user > < assistant >")
    assert template.fingerprint(tok) != template.fingerprint(base.tokenizer)  # the chat template is in the cache key


def test_decoding_after_a_cached_single_passage_equals_full_prefill():
    # Given one passage
    gen = tiny_generator("qwen2")
    seg = PromptBuilder(gen).segments("why is the sky blue?", [("Sky", "Air scatters blue light more than red.")])
    config = SamplingConfig(max_new_tokens=10)
    # When decoding greedily after each prefill
    cached = list(gen.iter_tokens(cached_prefill(gen, seg, BlockLayout("composite")), config))
    full = list(gen.iter_tokens(full_prefill(gen, seg), config))
    # Then the answers are the same tokens
    assert cached == full


def test_decoding_past_the_reserved_cache_capacity_grows_it():
    # Given a cached prefill with no spare capacity for generated tokens
    gen = tiny_generator("llama")
    seg = PromptBuilder(gen).segments("what do bees do?", [("Bees", "They dance."), ("Sky", "It is blue.")])
    config = SamplingConfig(max_new_tokens=12)
    # When decoding 12 tokens over it and over a cache with room to spare
    tight = list(gen.iter_tokens(cached_prefill(gen, seg, reserve=0), config))
    roomy = list(gen.iter_tokens(cached_prefill(gen, seg, reserve=64), config))
    # Then the tokens are the same
    assert tight == roomy


def test_workspace_memory_is_reused_only_after_the_previous_cache_is_gone():
    # Given a workspace and a live cached prefill that uses its memory
    from rag.generation.kv_blocks import Workspace

    gen, ws = tiny_generator("llama"), Workspace()
    seg = PromptBuilder(gen).segments("what do bees do?", [("Bees", "They dance."), ("Sky", "It is blue.")])
    first = cached_prefill(gen, seg, reserve=4, workspace=ws)
    ptr = first.cache.layers[0].keys.data_ptr()
    # When a second prefill runs while the first is alive, and a third after it is gone
    second = cached_prefill(gen, seg, reserve=4, workspace=ws)
    del first
    third = cached_prefill(gen, seg, reserve=4, workspace=ws)
    # Then only the third reuses the memory, with the same result
    assert second.cache.layers[0].keys.data_ptr() != ptr
    assert third.cache.layers[0].keys.data_ptr() == ptr
    assert torch.equal(second.logits, third.logits)


def test_batched_samples_equal_one_by_one_completions():
    # Given a sampling config with a seed (sample i uses seed + i)
    gen = tiny_generator("llama")
    config = SamplingConfig(max_new_tokens=12, temperature=0.9, top_p=0.95, seed=7, stop=("zz",))
    # When four samples are decoded as one batch, and one by one
    batched = gen.sample_texts("write about bees", 4, config)
    one_by_one = [gen.complete("write about bees", SamplingConfig(max_new_tokens=12, temperature=0.9, top_p=0.95,
                                                                  seed=7 + i, stop=("zz",))) for i in range(4)]
    # Then the texts are the same, and not all alike (the seeds differ)
    assert batched == one_by_one
    assert len(set(batched)) > 1
