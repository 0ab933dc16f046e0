"""Which KV store fits a generator and prompt template, and reading blocks from it.

The cache key is a sha256 of everything the stored states depend on: the weights (revision, or
the model name when no content id is known), the architecture's cache shape and RoPE
parameters, the prompt template fingerprint (template text, chat template, tokenizer), whether
blocks saw the prefix, and the storage dtype. A store is used only when its key matches; a store
built for another model or template is a clear error, never silently wrong states.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from indexes.errors import InputError
from indexes.kv_store import KVStore, KVStoreSpec, StoreDType
from indexes.manifest import CacheInfo, Manifest, record_cache
from rag.generation.kv_blocks import KVBlock, Workspace
from rag.generation.prompt import PromptTemplate
from rag.generation.rope import rotary_module


@dataclass(frozen=True)
class CacheConfig:
    """How passage states are computed and stored.

    Attributes:
        template: the prompt template (its passage block text is what gets cached).
        see_prefix: blocks attend to the shared prefix when encoded (see ``BlockLayout``).
        dtype: storage dtype; float16 halves the bytes and is exact enough for ranking-free reuse.
        shard_size: passages per safetensors shard (the unit of resumption).
    """

    template: PromptTemplate = PromptTemplate()
    see_prefix: bool = True
    dtype: StoreDType = "float16"
    shard_size: int = 64


def _shape(generator) -> tuple[int, int, int]:
    c = generator.model.config.get_text_config()
    heads = c.num_attention_heads
    head_dim = getattr(c, "head_dim", None) or c.hidden_size // heads
    return c.num_hidden_layers, getattr(c, "num_key_value_heads", None) or heads, head_dim


def store_spec(generator, config: CacheConfig) -> KVStoreSpec:
    """The spec (and key) a store for ``generator`` under ``config`` must have."""
    rotary_module(generator.model)  # non-RoPE models cannot use cached blocks
    layers, kv_heads, head_dim = _shape(generator)
    template_sha = config.template.fingerprint(generator.tokenizer)
    rope = getattr(generator.model.config, "rope_parameters", None) or getattr(generator.model.config, "rope_scaling", None)
    blob = json.dumps(
        {"weights": generator.revision or generator.name, "shape": [layers, kv_heads, head_dim], "rope": rope,
         "template": template_sha, "see_prefix": config.see_prefix, "dtype": config.dtype},
        sort_keys=True, default=str,
    )
    key = hashlib.sha256(blob.encode("utf-8")).hexdigest()
    return KVStoreSpec(model=generator.name, revision=generator.revision, key=key, dtype=config.dtype, layers=layers,
                       kv_heads=kv_heads, head_dim=head_dim, see_prefix=config.see_prefix, template_sha256=template_sha)


def store_dir(index_dir: str | Path, key: str) -> Path:
    return Path(index_dir) / "kv" / key[:16]


class PassageStates:
    """Stored prefix and passage blocks for one generator and template, as :class:`KVBlock` s."""

    def __init__(self, store: KVStore) -> None:
        self.store = store
        self.workspace = Workspace()  # memory reused by successive questions' caches

    def prefix(self) -> KVBlock | None:
        kv = self.store.prefix()
        return None if kv is None else KVBlock(*kv)

    def blocks(self, passage_ids: Sequence[str]) -> list[KVBlock | None]:
        """One block per id; ``None`` where the passage is not in the store (computed on the fly)."""
        out = []
        for pid in passage_ids:
            kv = self.store.get(pid)
            out.append(None if kv is None else KVBlock(*kv))
        return out


def open_passage_states(index_dir: str | Path, generator, config: CacheConfig = CacheConfig(), *,
                        manifest: Manifest | None = None) -> PassageStates:
    """The index's KV store that fits ``generator`` and ``config``.

    A store of the same model, template and layout in another storage dtype also fits (the
    states are upcast on load); ``config.dtype`` is preferred when several exist.

    Args:
        index_dir: the index directory.
        generator: the loaded causal LM the states are for.
        config: template, layout and preferred storage dtype.
        manifest: the commit whose stores to read (an open index's ``manifest``, so the states
            match the passages it serves); default: the index's current ``manifest.json``.

    Raises:
        InputError: the index has no KV store, or only stores built for another model, template
            or layout (the message names them and the command that builds the right one).
    """
    dtypes = [config.dtype] + [d for d in ("float16", "bfloat16", "float32") if d != config.dtype]
    wanted = [store_spec(generator, replace(config, dtype=d)).key for d in dtypes]
    manifest = Manifest.read(index_dir) if manifest is None else manifest
    kv = [c for c in manifest.caches if c.kind == "kv"]
    match = next((c for key in wanted for c in kv if c.key == key), None)
    fix = f"build one with `rag cache build --index {index_dir} --generator {generator.name}`"
    if match is None:
        if not kv:
            raise InputError(f"{index_dir} has no passage KV cache; {fix}, or answer without the passage KV cache")
        built = ", ".join(f"{c.model} ({c.dtype}, key {c.key[:12]})" for c in kv)
        raise InputError(
            f"the KV cache in {index_dir} was built for another model or prompt template [{built}], "
            f"not {generator.name} (key {wanted[0][:12]}); {fix}"
        )
    return PassageStates(KVStore(Path(index_dir) / match.path))


def record_in_manifest(index_dir: str | Path, spec: KVStoreSpec, path: Path) -> CacheInfo:
    """Add (or replace) the store's :class:`CacheInfo` in the index manifest (:func:`indexes.manifest.record_cache`)."""
    info = CacheInfo(kind="kv", path=str(Path(path).relative_to(index_dir)), model=spec.model,
                     revision=spec.revision, key=spec.key, dtype=spec.dtype, passages=spec.passages)
    return record_cache(index_dir, info)
