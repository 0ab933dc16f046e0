"""The generation-path options of ``rag ask`` and ``rag eval qa``, declared once.

Both commands take the same flags with the same help and the same checks, so a user evaluates
exactly what ``rag ask`` answers with: the passage KV cache (``--kv-cache``, ``--positions``),
RAG-Sequence / RAG-Token fusion (``--fusion``, ``--fusion-temperature``,
``--rag-sequence-decoding``), dynamic block selection (``--select-blocks``) and KV eviction
(``--evict``, ``--kv-budget``). :func:`path_config` turns them into the
:class:`rag.generation.paths.PathConfig` whose fields :class:`rag.pipeline.AskConfig` takes
(:func:`ask_fields`); every refusal is one line that names the flags.

Defaults are literals here (importing the config classes would import torch at CLI start-up);
``tests/eval/test_qa_run_generation_options.py`` checks they equal the library's.
"""

from __future__ import annotations

from typing import Annotated

import typer

from rag.cli.checks import number_in
from rag.cli.choices import EvictionPolicy, Fusion, Positions, SequenceDecoding

KVCacheOption = Annotated[bool, typer.Option(
    "--kv-cache", help="Reuse the passage KV states stored by `rag cache build` (prefill only the question).")]
PositionsOption = Annotated[Positions, typer.Option(
    "--positions", help="Cached block positions: rerotate (Block-Attention) or composite (TurboRAG).")]
FusionOption = Annotated[Fusion, typer.Option(
    "--fusion", help="How the k passages are combined: concat (one prompt), rag-sequence or rag-token (Lewis et al. "
                     "2020: marginalise over passages, p(z|x) = softmax(score / --fusion-temperature)).")]
FusionTemperatureOption = Annotated[float, typer.Option(
    "--fusion-temperature", help="Temperature of p(z|x) for rag-sequence / rag-token (> 0).", min=0.0,
    callback=number_in(0, None, low_open=True))]
RagSequenceDecodingOption = Annotated[SequenceDecoding, typer.Option(
    "--rag-sequence-decoding", help="rag-sequence: thorough (score every candidate under every passage) or fast "
                                    "(only under the passages that proposed it).")]
SelectBlocksOption = Annotated[int | None, typer.Option(
    "--select-blocks", min=1, help="With --kv-cache: attend only to the M cached blocks the question attends to most "
                                   "(dynamic block selection).")]
EvictOption = Annotated[EvictionPolicy | None, typer.Option(
    "--evict", help="Full prefill, then evict its KV cache to --kv-budget tokens: h2o or snapkv (not with --kv-cache).")]
KVBudgetOption = Annotated[int | None, typer.Option(
    "--kv-budget", min=1, help="--evict: prompt tokens kept per layer and KV head.")]

#: Defaults of the options above (the library's: FusionConfig, BlockLayout).
POSITIONS = "rerotate"
FUSION = "concat"
FUSION_TEMPERATURE = 1.0
RAG_SEQUENCE_DECODING = "thorough"


def path_config(generator: str | None, *, kv_cache: bool, positions: str, fusion: str, fusion_temperature: float,
                rag_sequence_decoding: str, select_blocks: int | None, evict: str | None, kv_budget: int | None,
                fid: bool = False):
    """The :class:`~rag.generation.paths.PathConfig` of these options, checked as ``rag ask`` checks them.

    Args:
        generator: the ``--generator`` value (``None``: extractive answers).
        fid: ``--fid`` (a Fusion-in-Decoder reader): the decoder-only options are refused.
        **others: the option values above.

    Raises:
        InputError: an option without the generator it needs, or options that do not combine (the
            message names the flags). Values outside an option's set never get here: they are
            usage errors of the option's choice type (:mod:`rag.cli.choices`).
    """
    from indexes.errors import InputError
    from rag.generation.block_select import BlockSelectConfig
    from rag.generation.kv_blocks import BlockLayout
    from rag.generation.kv_evict import EvictionConfig
    from rag.generation.paths import PathConfig
    from rag.generation.rag_fusion import FusionConfig

    shaping = fusion != FUSION or select_blocks is not None or evict is not None
    if fid and shaping:
        raise InputError("--fusion rag-*, --select-blocks and --evict are decoder-only options; they do not combine with --fid")
    if not fid and shaping and generator is None:
        raise InputError("--fusion rag-*, --select-blocks and --evict shape a generator's prompt: add --generator MODEL")
    if not fid and kv_cache and generator is None:
        raise InputError("--kv-cache needs --generator MODEL")
    if (evict is None) != (kv_budget is None):
        raise InputError("--evict POLICY and --kv-budget N go together")
    return PathConfig(kv_cache, BlockLayout(positions=positions), FusionConfig(fusion, fusion_temperature, rag_sequence_decoding),
                      BlockSelectConfig(select_blocks) if select_blocks is not None else None,
                      EvictionConfig(evict, kv_budget) if evict is not None else None)  # refusals name the flags


def ask_fields(path) -> dict:
    """``path``'s fields as :class:`rag.pipeline.AskConfig` keyword arguments (the same names)."""
    from dataclasses import fields

    return {f.name: getattr(path, f.name) for f in fields(path)}
