"""LUMEN passage memory on disk: one safetensors file of fp16 states, memory-mapped for reading.

LUMEN (de Jong et al., ICML 2023, arXiv:2301.10448) stores, for every passage, the output of the
first ``N_layers − K`` encoder layers: a ``(Lp_j, d)`` matrix for passage row ``j``. Passages have
different lengths, so the matrices are stored ragged, end to end::

    lumen-<key>/memory.safetensors
        states   (T, d)  float16   T = Σ_j Lp_j; rows offsets[j]:offsets[j+1] belong to passage j
        offsets  (P+1,)  int64     P = passages, offsets[0] = 0
        header metadata: model, key, live_layers, format

fp16 halves the bytes of fp32 (``2·d`` bytes per token) and is what LUMEN's memory is read in;
safetensors is plain (a JSON header and raw little-endian arrays) and ``safe_open`` maps the
file, so opening a store costs nothing and reading a passage reads only its rows. The ``key``
(a hash of model, revision, ``K``, tokenization and dtype, computed in ``rag/``) names the
directory, so stores for different models or ``K`` live side by side. The directory is written
atomically (:func:`indexes.atomic.atomic_directory`); its record in ``manifest.json`` is an
:class:`indexes.manifest.CacheInfo` with ``kind="lumen"``.

Example:
    >>> import tempfile, torch
    >>> d = tempfile.mkdtemp()
    >>> info = write_lumen_memory(d, [torch.ones(3, 4), torch.zeros(2, 4)], model="t5", key="abc", live_layers=2)
    >>> LumenStore(d, info).get([1])[0].shape
    torch.Size([2, 4])
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import torch

from indexes.atomic import atomic_directory
from indexes.errors import IndexFormatError
from indexes.io_errors import save_safetensors
from indexes.manifest import CacheInfo

MEMORY_NAME = "memory.safetensors"
LUMEN_FORMAT = "lumen-ragged-v1"


def lumen_dir_name(key: str) -> str:
    """Directory of the store with this key, relative to the index directory."""
    return f"lumen-{key}"


def write_lumen_memory(
    directory: str | Path,
    states: Iterable[torch.Tensor],
    *,
    model: str,
    key: str,
    live_layers: int,
    revision: str | None = None,
    name: str | None = None,
) -> CacheInfo:
    """Write passages' memory states (row order) into ``directory/lumen-<key>/`` atomically.

    Args:
        directory: the index directory.
        states: one ``(Lp_j, d)`` tensor per passage row ``j``, any float dtype; stored as fp16.
        model: model id or path the states came from.
        key: hash of everything the states depend on (see :func:`rag.fid.memory.lumen_key`).
        live_layers: ``K``; recorded for inspection.
        revision: model revision or weights hash, when known.
        name: the folder to write (default ``lumen-<key>``; index changes write one per commit).

    Returns:
        The :class:`CacheInfo` to add to the index's manifest (the caller writes the manifest).
    """
    chunks = [s.detach().to("cpu", torch.float16).contiguous() for s in states]  # each (Lp_j, d)
    if not chunks:
        raise IndexFormatError(f"{directory}: no passages to store LUMEN memory for")
    lengths = torch.tensor([0] + [c.shape[0] for c in chunks], dtype=torch.int64)
    offsets = torch.cumsum(lengths, 0)  # (P+1,)
    rel = name or lumen_dir_name(key)
    with atomic_directory(Path(directory) / rel, owned=lambda name: name == MEMORY_NAME) as tmp:
        meta = {"model": model, "key": key, "live_layers": str(live_layers), "format": LUMEN_FORMAT}
        save_safetensors({"states": torch.cat(chunks, 0), "offsets": offsets}, tmp / MEMORY_NAME, metadata=meta)
    return CacheInfo(kind="lumen", path=rel, model=model, revision=revision, key=key, dtype="float16", passages=len(chunks))


class LumenStore:
    """Read-only, memory-mapped LUMEN memory of an index.

    Args:
        directory: the index directory.
        info: the store's record from the index manifest.

    Raises:
        IndexFormatError: the file is missing, damaged, or does not match ``info``.
    """

    def __init__(self, directory: str | Path, info: CacheInfo) -> None:
        from safetensors import safe_open

        self.info = info
        path = Path(directory) / info.path / MEMORY_NAME
        try:
            self._file = safe_open(str(path), framework="pt")  # maps the file; reads nothing yet
            meta = self._file.metadata() or {}
            self.offsets = self._file.get_tensor("offsets")  # (P+1,)
            self._states = self._file.get_slice("states")
        except Exception as exc:  # safetensors raises its own SafetensorError and OSError
            raise IndexFormatError(f"{path}: LUMEN memory unreadable ({exc}); rebuild it with `rag cache lumen`") from None
        if meta.get("key") != info.key or len(self.offsets) != info.passages + 1:
            raise IndexFormatError(f"{path}: LUMEN memory does not match manifest.json (key or passage count); rebuild it")
        self.dim = int(self._states.get_shape()[1])
        self.live_layers = int(meta.get("live_layers", "0"))

    def __len__(self) -> int:
        return int(self.info.passages)

    def lengths(self, rows: Sequence[int]) -> list[int]:
        """Stored token count ``Lp_j`` of each passage row."""
        return [int(self.offsets[j + 1] - self.offsets[j]) for j in rows]

    def get(self, rows: Sequence[int]) -> list[torch.Tensor]:
        """The fp16 ``(Lp_j, d)`` memory of each passage row, read from the mapped file."""
        out = []
        for j in rows:
            if not 0 <= j < len(self):
                raise IndexFormatError(f"LUMEN memory: passage row {j} outside 0..{len(self) - 1}")
            out.append(self._states[int(self.offsets[j]) : int(self.offsets[j + 1])])  # (Lp_j, d)
        return out

    def bytes_per_passage(self) -> float:
        """Mean stored bytes per passage (fp16: ``2 · d · mean Lp``)."""
        return 2.0 * self.dim * float(self.offsets[-1]) / max(1, len(self))
