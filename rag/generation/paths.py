"""From retrieved passages to a token stream: the generation paths ``rag ask`` can take.

    concat        prefix ‖ b_1 ‖ … ‖ b_k ‖ q, full prefill or over cached blocks (the default)
    select m      cached blocks only: keep the m blocks the question attends to most
                  (:mod:`rag.generation.block_select`), then concat over those
    rag-token     one prompt per passage, per-step mixture (:mod:`rag.generation.rag_fusion`)
    rag-sequence  one prompt per passage, candidates marginalised over passages
    evict         full prefill of the concat prompt, cache evicted to a budget (:mod:`rag.generation.kv_evict`)

Every path is lazy: no model work happens until the first token is asked for, so the caller's
time to first token covers the prefill, the selection and (RAG-Sequence) the whole decoding.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from indexes.errors import InputError
from rag.generation.block_select import BlockSelectConfig, select_blocks
from rag.generation.kv_blocks import BlockLayout, encode_block, encode_prefix
from rag.generation.kv_evict import EvictionConfig, evicted_prefill
from rag.generation.prefill import cached_prefill, full_prefill
from rag.generation.prompt import PromptBuilder
from rag.generation.rag_fusion import (FusionConfig, answer_tokens, passage_prior, rag_sequence_decode,
                                       rag_token_tokens)
from rag.generation.sampling import SamplingConfig


@dataclass(frozen=True)
class OptionNames:
    """How messages name the path's options: ``rag ask``'s flags by default (the messages
    :class:`PathConfig` has always raised); the REST API passes its JSON fields."""

    kv_cache: str = "--kv-cache"
    fusion: str = "--fusion"
    select: str = "--select-blocks"
    evict: str = "--evict"


@dataclass(frozen=True)
class PathConfig:
    """Which path, and its settings (see the module doc).

    Attributes:
        kv_cache: read passage blocks from the KV store (question-only prefills).
        layout: block positions of cached prefills.
        fusion: concat, RAG-Sequence or RAG-Token.
        select: dynamic block selection (needs ``kv_cache``), or ``None``.
        eviction: evict the full prefill's cache to a budget (needs concat without ``kv_cache``), or ``None``.
    """

    kv_cache: bool = False
    layout: BlockLayout = BlockLayout()
    fusion: FusionConfig = FusionConfig()
    select: BlockSelectConfig | None = None
    eviction: EvictionConfig | None = None

    def __post_init__(self) -> None:
        message = conflict(self.kv_cache, self.fusion, self.select, self.eviction)
        if message is not None:
            raise InputError(message)


def conflict(kv_cache: bool, fusion: FusionConfig, select: BlockSelectConfig | None, eviction: EvictionConfig | None,
             names: OptionNames = OptionNames()) -> str | None:
    """Why these :class:`PathConfig` options do not combine, naming them as ``names`` spells them;
    ``None`` when they do. The CLI names its flags and the REST API its JSON fields, in otherwise
    the same message.

    Example:
        >>> conflict(False, FusionConfig(), BlockSelectConfig(2), None)
        '--select-blocks scores the cached passage keys: add --kv-cache'
        >>> conflict(False, FusionConfig(), BlockSelectConfig(2), None, OptionNames("kv_cache", "fusion", "select_blocks", "evict"))
        'select_blocks scores the cached passage keys: add kv_cache'
    """
    if select is not None and not kv_cache:
        return f"{names.select} scores the cached passage keys: add {names.kv_cache}"
    if eviction is not None and (kv_cache or fusion.fusion != "concat"):
        return f"{names.evict} prunes a full-context prefill: it does not combine with {names.kv_cache} or a RAG fusion"
    return None


@dataclass
class PromptStats:
    """Filled in when the first token is produced: prompt tokens and those read from the store."""

    prompt_tokens: int = 0
    cached_tokens: int = 0


def generate_tokens(generator, builder: PromptBuilder, question: str, hits: Sequence, sampling: SamplingConfig,
                    config: PathConfig, states=None) -> tuple[list, Iterator[int], PromptStats]:
    """The passages the answer is conditioned on, its token stream, and prompt statistics.

    Args:
        generator: a loaded :class:`~rag.generation.generator.Generator`.
        builder: the prompt builder (template) of this generator.
        question: the question text.
        hits: retrieved passages, best first (``title``, ``text``, ``id``, ``score``).
        sampling: decoding settings.
        config: the path.
        states: opened :class:`~rag.generation.passage_cache.PassageStates` when ``config.kv_cache``.

    Returns:
        ``(used, tokens, stats)``: ``used`` are the hits in the prompt(s) (all of them, or the
        selected blocks), in citation order.
    """
    hits = list(hits)
    blocks = prefix = None
    if config.kv_cache:
        prefix, blocks = states.prefix(), states.blocks([h.id for h in hits])  # None: not stored
        if (config.select is not None and config.select.m < len(hits)) or config.fusion.fusion != "concat":
            prefix = prefix or encode_prefix(generator, builder.prefix_ids)  # missing states are computed
            blocks = [b if b is not None else encode_block(generator, prefix, builder.block_ids(h.title, h.text),
                                                            config.layout.see_prefix) for h, b in zip(hits, blocks)]
        if config.select is not None and config.select.m < len(hits):
            m = config.select.m
            keep, _ = select_blocks(generator, prefix, blocks, builder.question_ids(question, m), config.select)
            hits, blocks = [hits[i] for i in keep], [blocks[i] for i in keep]
    stats = PromptStats()
    return hits, _tokens(generator, builder, question, hits, sampling, config, states, prefix, blocks, stats), stats


def _tokens(generator, builder, question, hits, sampling, config, states, prefix, blocks, stats) -> Iterator[int]:
    fusion = config.fusion
    if fusion.fusion == "concat":
        segments = builder.segments(question, [(h.title, h.text) for h in hits])
        if config.eviction is not None:
            prefill, _ = evicted_prefill(generator, segments.flat(), config.eviction)
        elif config.kv_cache:
            prefill = cached_prefill(generator, segments, config.layout, prefix, blocks,
                                     reserve=sampling.max_new_tokens, workspace=states.workspace)
        else:
            prefill = full_prefill(generator, segments)
        stats.prompt_tokens, stats.cached_tokens = prefill.prompt_tokens, prefill.cached_tokens
        yield from generator.iter_tokens(prefill, sampling)
        return
    from rag.generation.passage_batch import PassageBatch

    prefills = []
    for z, h in enumerate(hits):
        segments = builder.segments(question, [(h.title, h.text)])
        if config.kv_cache:  # no shared workspace: the k caches live at the same time
            prefills.append(cached_prefill(generator, segments, config.layout, prefix, [blocks[z]],
                                           reserve=sampling.max_new_tokens))
        else:
            prefills.append(full_prefill(generator, segments))
    stats.prompt_tokens = sum(p.prompt_tokens for p in prefills)
    stats.cached_tokens = sum(p.cached_tokens for p in prefills)
    batch = PassageBatch(generator, prefills)
    log_prior = passage_prior([h.score for h in hits], fusion.temperature)
    if fusion.fusion == "rag-token":
        yield from rag_token_tokens(generator, batch, log_prior, sampling)
        return
    ranked = rag_sequence_decode(generator, batch, log_prior, sampling, fusion.decoding)
    yield from answer_tokens(ranked[0] if ranked else None, generator.eos_ids)
