"""Fill an index's KV store: encode the shared prefix once, then every passage as a block.

Each passage block is encoded after the prefix at positions ``p .. p+L-1``
(:func:`rag.generation.kv_blocks.encode_block`) and appended to the store in shards. A build
that stops (crash, Ctrl-C) keeps every completed shard; running it again skips the passages
already stored. The manifest's ``caches`` entry is updated after every shard, so a partial
store is already usable (passages not yet stored are encoded at question time).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from indexes.kv_store import KVStoreWriter
from indexes.manifest import CacheInfo, Manifest
from indexes.segmented import open_passage_store
from rag.generation.kv_blocks import encode_block, encode_prefix
from rag.generation.passage_cache import CacheConfig, record_in_manifest, store_dir, store_spec
from rag.generation.prompt import PromptBuilder


@dataclass(frozen=True)
class CacheBuildReport:
    """What a build did: the manifest record and throughput figures."""

    info: CacheInfo
    encoded: int
    skipped: int
    seconds: float

    @property
    def passages_per_second(self) -> float:
        return self.encoded / self.seconds if self.seconds > 0 else float("nan")


def build_passage_cache(index_dir: str | Path, generator, config: CacheConfig = CacheConfig(),
                        progress: bool = True, limit: int | None = None) -> CacheBuildReport:
    """Encode and store the states of every passage of the index (or the first ``limit``).

    Args:
        index_dir: an index built by ``rag index``.
        generator: the :class:`~rag.generation.generator.Generator` whose states to store.
        config: template, layout and storage dtype (they decide the cache key).
        progress: show a progress bar.
        limit: stop after this many passages (row order), e.g. for a quick check.

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
    total = min(len(store), limit) if limit is not None else len(store)
    encoded = skipped = 0
    start = time.perf_counter()
    try:
        bar = tqdm(total=total, desc="KV blocks", unit="passage", disable=not progress)
        for i, passage in enumerate(store.iter_all()):
            if i >= total:
                break
            bar.update(1)
            if passage.id in writer.done:
                skipped += 1
                continue
            block = encode_block(generator, prefix, builder.block_ids(passage.title, passage.text), config.see_prefix)
            writer.add(passage.id, block.keys, block.values)
            encoded += 1
            if encoded % config.shard_size == 0:  # a partial store is usable: missing blocks are computed
                writer.flush()
                record_in_manifest(index_dir, writer.spec, directory)
        writer.flush()
        bar.close()
    finally:
        store.close()
    seconds = time.perf_counter() - start
    info = record_in_manifest(index_dir, writer.spec, directory)
    return CacheBuildReport(info=info, encoded=encoded, skipped=skipped, seconds=seconds)
