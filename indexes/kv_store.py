"""Passage KV store: precomputed generator keys/values per passage, in safetensors shards.

Layout of a store directory (inside an index, e.g. ``INDEX/kv/<key[:16]>/``)::

    kv_store.json            KVStoreSpec: model, revision, key, dtype, shapes, shard list
    prefix.safetensors       "k", "v": the shared prompt prefix, (n_layers, H_kv, p, d)
    shard-00000.safetensors  "k/<passage id>", "v/<passage id>": (n_layers, H_kv, L, d) each
    ...

Every file is written next to its final name and renamed into place, and ``kv_store.json`` is
rewritten after each shard, so readers only ever see complete shards and an interrupted build
resumes where it stopped. Reads memory-map the shards (``safetensors.safe_open``): opening a
store reads only the headers, and loading a passage touches only its bytes. The ``key`` is a
hash of everything the states depend on (model weights, prompt template, layout, dtype), so
states built for another model or template are refused instead of silently misused. A change
of the index (``rag add``/``delete``/``compact``) carries the store into its commit with
:func:`derive_kv_store`: states of deleted or replaced passages are dropped, the others kept.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, ValidationError

from indexes.atomic import atomic_directory, atomic_write_text
from indexes.errors import IndexFormatError
from indexes.io_errors import reporting_storage, save_safetensors

SPEC_NAME = "kv_store.json"
PREFIX_NAME = "prefix.safetensors"
KV_FORMAT = 1
StoreDType = Literal["float16", "bfloat16", "float32"]


class KVStoreSpec(BaseModel):
    """What a KV store holds and how it was made (``kv_store.json``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: int = KV_FORMAT
    model: str
    revision: str | None = None
    key: str
    dtype: StoreDType = "float16"  # half the bytes of float32; the model upcasts on load
    layers: int
    kv_heads: int
    head_dim: int
    see_prefix: bool
    template_sha256: str
    prefix_tokens: int = 0
    shards: tuple[str, ...] = ()
    passages: int = 0

    @property
    def bytes_per_token(self) -> int:
        """K and V of one token across all layers, in bytes."""
        return 2 * self.layers * self.kv_heads * self.head_dim * torch.tensor([], dtype=getattr(torch, self.dtype)).element_size()


def _save(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    tmp = path.parent / f".{path.name}.tmp-{secrets.token_hex(4)}"
    try:
        save_safetensors({k: t.contiguous() for k, t in tensors.items()}, tmp)
        with reporting_storage(path):
            os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_spec(directory: str | Path) -> KVStoreSpec:
    """Read ``kv_store.json``.

    Raises:
        IndexFormatError: the file is missing, damaged or of an unknown format.
    """
    path = Path(directory) / SPEC_NAME
    try:
        spec = KVStoreSpec.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, ValidationError, ValueError) as exc:
        raise IndexFormatError(f"{path}: unreadable KV store spec ({str(exc).splitlines()[0]}); rebuild with `rag cache build`") from None
    return spec


class KVStoreWriter:
    """Appends passage states to a store, one shard at a time; resumes an existing store.

    Args:
        directory: the store directory (created if missing).
        spec: the store's spec; an existing store must have the same ``key``.
        shard_size: passages per shard (a crash loses at most one shard of work).

    Raises:
        IndexFormatError: ``directory`` holds a store with another key.
    """

    def __init__(self, directory: str | Path, spec: KVStoreSpec, shard_size: int = 64) -> None:
        self.directory = Path(directory)
        with reporting_storage(self.directory, "create the folder"):
            self.directory.mkdir(parents=True, exist_ok=True)
        self.shard_size = shard_size
        if (self.directory / SPEC_NAME).is_file():
            old = read_spec(self.directory)
            if old.key != spec.key:
                raise IndexFormatError(f"{self.directory} holds KV states for another model/template (key {old.key[:12]}); delete it or choose another directory")
            spec = old
        self.spec = spec
        self.done: set[str] = set(KVStore(self.directory, spec).ids()) if spec.shards else set()
        self._pending: dict[str, torch.Tensor] = {}

    def has_prefix(self) -> bool:
        return (self.directory / PREFIX_NAME).is_file()

    def put_prefix(self, keys: torch.Tensor, values: torch.Tensor) -> None:
        dtype = getattr(torch, self.spec.dtype)
        _save(self.directory / PREFIX_NAME, {"k": keys.to(dtype), "v": values.to(dtype)})
        self.spec = self.spec.model_copy(update={"prefix_tokens": int(keys.shape[-2])})
        atomic_write_text(self.directory / SPEC_NAME, self.spec.model_dump_json(indent=2) + "\n")

    def add(self, passage_id: str, keys: torch.Tensor, values: torch.Tensor) -> None:
        """Queue one passage's states (n_layers, H_kv, L, d); a full shard is written at once."""
        dtype = getattr(torch, self.spec.dtype)
        self._pending[f"k/{passage_id}"] = keys.to(dtype)
        self._pending[f"v/{passage_id}"] = values.to(dtype)
        self.done.add(passage_id)
        if len(self._pending) >= 2 * self.shard_size:
            self.flush()

    def flush(self) -> None:
        """Write queued passages as a new shard and record it in ``kv_store.json``."""
        if not self._pending:
            return
        name = f"shard-{len(self.spec.shards):05d}.safetensors"
        _save(self.directory / name, self._pending)
        self.spec = self.spec.model_copy(update={"shards": (*self.spec.shards, name), "passages": self.spec.passages + len(self._pending) // 2})
        atomic_write_text(self.directory / SPEC_NAME, self.spec.model_dump_json(indent=2) + "\n")
        self._pending = {}


class KVStore:
    """Read-only, memory-mapped access to a store's passage states.

    Args:
        directory: the store directory.
        spec: its spec when already read (default: read ``kv_store.json``).
    """

    def __init__(self, directory: str | Path, spec: KVStoreSpec | None = None) -> None:
        from safetensors import safe_open

        self.directory = Path(directory)
        self.spec = spec or read_spec(self.directory)
        self._shards = []
        self._where: dict[str, int] = {}
        for i, name in enumerate(self.spec.shards):
            try:
                handle = safe_open(str(self.directory / name), framework="pt")
            except Exception as exc:  # noqa: BLE001 - any damage is a format error
                raise IndexFormatError(f"{self.directory / name}: unreadable KV shard ({exc}); rebuild with `rag cache build`") from None
            self._shards.append(handle)
            for key in handle.keys():
                if key.startswith("k/"):
                    self._where[key[2:]] = i

    def __len__(self) -> int:
        return len(self._where)

    def __contains__(self, passage_id: str) -> bool:
        return passage_id in self._where

    def ids(self) -> Iterable[str]:
        return self._where.keys()

    def get(self, passage_id: str) -> tuple[torch.Tensor, torch.Tensor] | None:
        """``(keys, values)`` of a passage, (n_layers, H_kv, L, d) each, or ``None`` if absent."""
        i = self._where.get(passage_id)
        if i is None:
            return None
        shard = self._shards[i]
        return shard.get_tensor(f"k/{passage_id}"), shard.get_tensor(f"v/{passage_id}")

    def prefix(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """``(keys, values)`` of the shared prefix, or ``None`` if it was not stored."""
        from safetensors.torch import load_file

        path = self.directory / PREFIX_NAME
        if not path.is_file():
            return None
        try:
            t = load_file(str(path))
            return t["k"], t["v"]
        except Exception as exc:  # noqa: BLE001 - SafetensorError, OSError, a missing key: all damage
            raise IndexFormatError(f"{path}: unreadable KV prefix ({exc}); rebuild with `rag cache build`") from None


def derive_kv_store(source: str | Path, target: str | Path, keep: Callable[[str], bool]) -> KVStoreSpec:
    """Write at ``target`` a copy of the store at ``source`` holding only the passages ``keep`` accepts.

    How an index change carries its KV cache into the new commit without re-encoding (the source
    stays as it is for readers of the older commit): a shard whose passages all stay is
    hard-linked (no bytes copied; copied where links are refused), one that loses passages is
    rewritten without them, an empty one is left out; shards are renumbered from 0 so a later
    :class:`KVStoreWriter` appends after them. A passage stored twice keeps its latest state.

    Raises:
        IndexFormatError: the source store is unreadable.
    """
    source, target = Path(source), Path(target)
    spec = read_spec(source)
    store = KVStore(source, spec)
    shards: list[str] = []
    kept_total = 0
    with atomic_directory(target) as tmp:
        for i, name in enumerate(spec.shards):
            ids = [k[2:] for k in store._shards[i].keys() if k.startswith("k/")]
            kept = [pid for pid in ids if store._where[pid] == i and keep(pid)]
            if not kept:
                continue
            new = f"shard-{len(shards):05d}.safetensors"
            if len(kept) == len(ids):
                _link(source / name, tmp / new)
            else:
                _save(tmp / new, {f"{kv}/{pid}": store._shards[i].get_tensor(f"{kv}/{pid}") for pid in kept for kv in "kv"})
            shards.append(new)
            kept_total += len(kept)
        if (source / PREFIX_NAME).is_file():
            _link(source / PREFIX_NAME, tmp / PREFIX_NAME)
        spec = spec.model_copy(update={"shards": tuple(shards), "passages": kept_total})
        atomic_write_text(tmp / SPEC_NAME, spec.model_dump_json(indent=2) + "\n")
    return spec


def _link(src: Path, dst: Path) -> None:
    """Hard-link ``src`` at ``dst`` (immutable files shared between commits), or copy it."""
    import shutil

    with reporting_storage(dst):
        try:
            os.link(src, dst)
        except OSError:
            shutil.copyfile(src, dst)
