"""Decoder-only generation over retrieved passages, with precomputed passage KV states.

Modules:
    sampling: decoding configuration and one sampling step (greedy, temperature, top-k, top-p).
    generator: load a causal LM with rotary positions, render prompts, stream tokens.
    batch: greedy completions of several prompts in one left-padded batch.
    prompt: the RAG prompt as token segments (prefix, passage blocks, question).
    rope: rotary position helpers (detect RoPE, re-rotate cached keys).
    kv_blocks: per-passage KV blocks, the block mask, and their assembly behind a shared prefix.
    prefill: the cached and the full-prefill paths to the first token.
    passage_cache: the cache key, and finding the index's KV store that fits a generator.
    cache_build: fill an index's KV store with passage blocks (resumable).
    cache_policy: a bounded passage KV cache: the passages a query log retrieves most, within a byte budget.
    train: fine-tune the generator with the block mask and positions of the cached path.
    passage_batch: k single-passage prompts decoded side by side in one padded batch.
    rag_fusion: RAG-Sequence and RAG-Token marginalisation over passages (Lewis et al. 2020).
    block_select: dynamic block selection from the question's attention mass on cached keys.
    kv_evict: H2O and SnapKV eviction of a full prefill's cache to a token budget.
    paths: from retrieved passages to a token stream (concat, selection, fusion, eviction).

Nothing here loads a model at import time.
"""
