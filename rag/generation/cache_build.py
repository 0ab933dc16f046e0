"""Fill an index's KV store: encode the shared prefix once, then every passage as a block.

Each passage block is encoded after the prefix at positions ``p .. p+L-1``
(:func:`rag.generation.kv_blocks.encode_block`) and appended to the store in shards. A build
that stops (crash, Ctrl-C) keeps every completed shard; running it again skips the passages
already stored. The manifest's ``caches`` entry is updated after every shard, so a partial
store is already usable (passages not yet stored are encoded at question time).

A :class:`CacheBudget` bounds the store to the passages a query log retrieves most
(:mod:`rag.generation.cache_policy`); ``ray`` encodes the blocks on a Ray actor pool
(:mod:`rag.ray_pipeline`) and writes them here, the same bits as the local loop.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from indexes.kv_store import KVStoreWriter
from indexes.manifest import CacheInfo, Manifest
from indexes.segmented import open_passage_store
from rag.generation.cache_policy import Selection, select_within_budget
from rag.generation.kv_blocks import encode_block, encode_prefix
from rag.generation.passage_cache import CacheConfig, record_in_manifest, store_dir, store_spec
from rag.generation.prompt import PromptBuilder
from rag.ray_pipeline import RayConfig, ray_kv_blocks


@dataclass(frozen=True)
class CacheBuildReport:
    """What a build did: the manifest record and throughput figures."""

    info: CacheInfo
    encoded: int
    skipped: int
    seconds: float
    selection: Selection | None = None  # what a budget chose (None: every passage)

    @property
    def passages_per_second(self) -> float:
        return self.encoded / self.seconds if self.seconds > 0 else float("nan")


@dataclass(frozen=True)
class CacheBudget:
    """Cache only the passages a query log retrieves most, within a disk budget (:mod:`rag.generation.cache_policy`).

    Attributes:
        counts: retrievals per passage id in the log (``retrieval_counts`` of a top-k run).
        budget_bytes: the most bytes the selected passages' states may take.
    """

    counts: Mapping[str, int]
    budget_bytes: int


def build_passage_cache(index_dir: str | Path, generator, config: CacheConfig = CacheConfig(),
                        progress: bool = True, limit: int | None = None, budget: CacheBudget | None = None,
                        ray: RayConfig | None = None, generator_config=None) -> CacheBuildReport:
    """Encode and store the states of every passage of the index (or the first ``limit``, or a budget's).

    Args:
        index_dir: an index built by ``rag index``.
        generator: the :class:`~rag.generation.generator.Generator` whose states to store.
        config: template, layout and storage dtype (they decide the cache key).
        progress: show a progress bar.
        limit: stop after this many passages (row order), e.g. for a quick check.
        budget: store only the most retrieved passages that fit it (``selection`` of the report).
        ray: encode the blocks on a Ray actor pool (inside :func:`rag.ray_pipeline.ray_runtime`);
            each actor loads ``generator_config``, the configuration ``generator`` was loaded with.

    Raises:
        InputError: the model has no rotary position embeddings.
    """
    from tqdm.auto import tqdm

    spec = store_spec(generator, config)
    # A store an index change carried into this commit lives in its own folder: fill that one in.
    recorded = next((c for c in Manifest.read(index_dir).caches if c.kind == "kv" and c.key == spec.key), None)
    directory = Path(index_dir) / recorded.path if recorded is not None else store_dir(index_dir, spec.key)
    writer = KVStoreWriter(directory, spec, shard_size=config.shard_size)
    builder = PromptBuilder(generator, config.template)
    prefix = encode_prefix(generator, builder.prefix_ids)
    if not writer.has_prefix():
        writer.put_prefix(prefix.keys, prefix.values)
    store = open_passage_store(index_dir)
    try:
        passages = list(itertools.islice(store.iter_all(), limit))
    finally:
        store.close()
    selection = None
    if budget is not None:
        selection = _select(passages, builder, writer.spec.bytes_per_token, budget)
        chosen = set(selection.ids)
        passages = [p for p in passages if p.id in chosen]
    todo = [p for p in passages if p.id not in writer.done]
    skipped = len(passages) - len(todo)
    start = time.perf_counter()
    if ray is not None:
        blocks = ((todo[i], k, v) for i, k, v in ray_kv_blocks(todo, generator_config, config, ray))
    else:
        blocks = ((p, *_encode(generator, prefix, builder, p, config.see_prefix)) for p in todo)
    encoded = 0
    with tqdm(total=len(passages), initial=skipped, desc="KV blocks", unit="passage", disable=not progress) as bar:
        for passage, keys, values in blocks:
            writer.add(passage.id, keys, values)
            encoded += 1
            bar.update(1)
            if encoded % config.shard_size == 0:  # a partial store is usable: missing blocks are computed
                writer.flush()
                record_in_manifest(index_dir, writer.spec, directory)
        writer.flush()
    seconds = time.perf_counter() - start
    info = record_in_manifest(index_dir, writer.spec, directory)
    return CacheBuildReport(info=info, encoded=encoded, skipped=skipped, seconds=seconds, selection=selection)


def _encode(generator, prefix, builder: PromptBuilder, passage, see_prefix: bool):
    block = encode_block(generator, prefix, builder.block_ids(passage.title, passage.text), see_prefix)
    return block.keys, block.values


def _select(passages: list, builder: PromptBuilder, bytes_per_token: int, budget: CacheBudget) -> Selection:
    """The budget's passages among ``passages``: sizes from their block token counts (tokenised, not encoded)."""
    rows = {p.id: i for i, p in enumerate(passages) if budget.counts.get(p.id, 0) > 0}
    sizes = {p.id: len(builder.block_ids(p.title, p.text)) * bytes_per_token for p in passages if p.id in rows}
    return select_within_budget({pid: budget.counts[pid] for pid in rows}, sizes, budget.budget_bytes, rows)
