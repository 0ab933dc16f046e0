"""Caches follow the documents: an index change carries its passage KV store and LUMEN memory along.

When ``rag add``, ``rag delete`` or ``rag compact`` publishes a commit, every cache recorded in
the previous commit is carried into it instead of being dropped:

- **KV store** (``rag cache build``; states keyed by passage id): the states of deleted and
  replaced passages are dropped, all others kept (shards hard-linked, see
  :func:`indexes.kv_store.derive_kv_store`), and the added passages are encoded when a
  :class:`KVFiller` for the store's key is given. Otherwise they are missing from the store, which
  is still valid: the cached path encodes a missing block at question time, and
  ``rag cache build`` fills them in later (it skips stored passages).
- **LUMEN memory** (``rag cache lumen``; states addressed by passage row): rows are rewritten in
  the new commit's row order, old passages' states copied; added passages need a
  :class:`LumenFiller` for the store's key, without which the store is dropped (it cannot hold
  gaps) and the report says so.

Each carried cache gets a folder of its own for the new commit (``kv/<key>-g<N>``,
``lumen-<key>-g<N>``), so readers of older commits keep their states; the old folders go when no
reader holds their commit (:func:`indexes.commits.collect_garbage`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from indexes.kv_store import KVStoreWriter, derive_kv_store
from indexes.lumen_store import LumenStore, lumen_dir_name, write_lumen_memory
from indexes.manifest import CacheInfo
from indexes.passage_store import Passage
from rag.wording import counted


@dataclass(frozen=True)
class KVFiller:
    """Encodes added passages' KV blocks with a loaded causal LM (as ``rag cache build`` does).

    Args:
        generator: the :class:`~rag.generation.generator.Generator` of the store.
        config: template and layout; the storage dtype is taken from each store.
    """

    generator: object
    config: object = None

    def _config(self, dtype: str):
        from rag.generation.passage_cache import CacheConfig

        return replace(self.config or CacheConfig(), dtype=dtype)

    def fits(self, info: CacheInfo) -> bool:
        from rag.generation.passage_cache import store_spec

        return info.kind == "kv" and store_spec(self.generator, self._config(info.dtype)).key == info.key

    def fill(self, writer: KVStoreWriter, passages: Sequence[Passage], dtype: str) -> None:
        from rag.generation.kv_blocks import encode_block, encode_prefix
        from rag.generation.prompt import PromptBuilder

        config = self._config(dtype)
        builder = PromptBuilder(self.generator, config.template)
        prefix = encode_prefix(self.generator, builder.prefix_ids)
        for p in passages:
            block = encode_block(self.generator, prefix, builder.block_ids(p.title, p.text), config.see_prefix)
            writer.add(p.id, block.keys, block.values)
        writer.flush()


@dataclass(frozen=True)
class LumenFiller:
    """Computes added passages' LUMEN memory with a loaded FiD reader (as ``rag cache lumen`` does).

    Args:
        reader: the :class:`~rag.fid.reader.FiDReader`.
        encoder: its :class:`~rag.fid.lumen.LumenEncoder` (``K`` live layers).
        model_id: the model id or path the store was built with.
    """

    reader: object
    encoder: object
    model_id: str

    def fits(self, info: CacheInfo) -> bool:
        from rag.fid.memory import lumen_key, reader_revision

        key = lumen_key(self.model_id, reader_revision(self.model_id, self.reader), self.encoder.live_layers,
                        self.reader.config.max_passage_tokens)
        return info.kind == "lumen" and key == info.key

    def states(self, passages: Sequence[Passage]) -> dict[str, object]:
        from rag.fid.memory import passage_memory

        return dict(zip([p.id for p in passages], passage_memory(self.reader, self.encoder, passages)))


Filler = KVFiller | LumenFiller


def carry_caches(directory: Path, caches: Sequence[CacheInfo], generation: int, old_ids: Sequence[str],
                 new_passages: Sequence[Passage], added: set[str], fillers: Sequence[Filler] = ()) -> tuple[tuple[CacheInfo, ...], list[str]]:
    """The caches of the commit ``generation`` and notes on what could not be carried.

    Args:
        directory: the index directory.
        caches: the previous commit's cache records.
        generation: the commit being written.
        old_ids: passage ids of the previous commit, in its row order.
        new_passages: passages of the new commit, in its row order.
        added: ids of passages whose text is new (added or replaced documents).
        fillers: loaded models that can compute states for added passages.
    """
    out: list[CacheInfo] = []
    notes: list[str] = []
    live = {p.id for p in new_passages}
    fresh = [p for p in new_passages if p.id in added]
    for info in caches:
        filler = next((f for f in fillers if f.fits(info)), None)
        if info.kind == "kv":
            rel = f"kv/{info.key[:16]}-g{generation:06d}"
            spec = derive_kv_store(directory / info.path, directory / rel, lambda pid: pid in live and pid not in added)
            writer = KVStoreWriter(directory / rel, spec, shard_size=64)
            if fresh and filler is not None:
                filler.fill(writer, fresh, info.dtype)
            elif fresh:
                notes.append(f"KV cache {info.model}: {counted(len(fresh), 'added passage')} "
                             f"{'is' if len(fresh) == 1 else 'are'} encoded at question time until "
                             f"`rag cache build --generator {info.model}` stores them")
            out.append(info.model_copy(update={"path": rel, "passages": writer.spec.passages}))
            continue
        if fresh and filler is None:
            notes.append(f"LUMEN memory {info.model} dropped ({counted(len(fresh), 'passage')} added without its model): "
                         f"rebuild it with `rag cache lumen --generator {info.model}`")
            continue
        old = LumenStore(directory, info)
        row = {pid: r for r, pid in enumerate(old_ids)}
        computed = filler.states(fresh) if fresh else {}
        states = (computed[p.id] if p.id in added else old.get([row[p.id]])[0] for p in new_passages)
        name = f"{lumen_dir_name(info.key)}-g{generation:06d}"
        new = write_lumen_memory(directory, states, model=info.model, key=info.key, live_layers=old.live_layers,
                                 revision=info.revision, name=name)
        out.append(new)
    return tuple(out), notes


def load_fillers(index: str | Path, device: str | None = None) -> tuple[list[Filler], list[str]]:
    """Load the model of every cache the index records (KV: its causal LM; LUMEN: its FiD reader,
    with the default passage truncation), keeping those whose key matches the store.

    Returns:
        ``(fillers, notes)``: the loaded fillers, and a line for each cache whose model could not
        be loaded or does not produce its key (its added passages are left to question time, or
        its LUMEN memory dropped).
    """
    from indexes.errors import RagError
    from indexes.manifest import Manifest

    fillers: list[Filler] = []
    notes: list[str] = []
    for info in Manifest.read(index).caches:
        try:
            if info.kind == "kv":
                from rag.generation.generator import Generator, GeneratorConfig

                filler: Filler = KVFiller(Generator.load(GeneratorConfig(info.model, device=device or "cpu")))
            else:
                from rag.fid.lumen import LumenEncoder
                from rag.fid.reader import FiDConfig, FiDReader

                reader = FiDReader.from_pretrained(info.model, FiDConfig(), device=device or "cpu")
                filler = LumenFiller(reader, LumenEncoder(reader.model, LumenStore(index, info).live_layers), info.model)
        except (RagError, OSError, ValueError) as exc:
            notes.append(f"{info.kind} cache {info.model}: model not loaded ({str(exc).splitlines()[0]})")
            continue
        if filler.fits(info):
            fillers.append(filler)
        else:
            notes.append(f"{info.kind} cache {info.model}: the loaded model does not match the stored states (key {info.key[:12]})")
    return fillers, notes
