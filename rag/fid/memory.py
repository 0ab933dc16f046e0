"""Precompute LUMEN passage memory into an index, and read it back for question-time encoding.

The offline half of LUMEN (de Jong et al., ICML 2023, arXiv:2301.10448, §3): every passage of the
index goes through the first ``N_layers − K`` encoder layers once (:meth:`LumenEncoder.memory`) and
is stored fp16 in the index (:mod:`indexes.lumen_store`), recorded in ``manifest.json``. At
question time :func:`attach_memory` reads the retrieved rows' memory and puts it in the FiD batch,
so only the question and the last ``K`` layers run.

The store's key hashes everything the states depend on, so a reader can never pair memory with
the wrong model, ``K`` or tokenization: model id and revision, ``K``, ``max_passage_tokens``, the
passage text template and the dtype.

Example:
    >>> reader = FiDReader.from_pretrained("t5dir", FiDConfig(n_passages=5))        # doctest: +SKIP
    >>> enc = LumenEncoder(reader.model, live_layers=2)                             # doctest: +SKIP
    >>> info = build_lumen_memory("idx", reader, enc, model_id="t5dir")             # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import torch

from indexes.errors import IndexFormatError
from indexes.lumen_store import LumenStore, write_lumen_memory
from indexes.manifest import CacheInfo, Manifest, record_cache
from indexes.segmented import open_passage_store
from rag.fid.inputs import PASSAGE_FORMAT, FiDInputs, passage_text, tokenize
from rag.fid.lumen import LumenEncoder
from rag.fid.reader import FiDReader


def legacy_revision(model: str | Path) -> str | None:
    """The revision LUMEN stores built before :mod:`rag.models` were keyed with, or None.

    Read-only compatibility: a fingerprint of a local folder's weight files (names, sizes,
    mtimes). :func:`open_reader_memory` still accepts a store under this key, so memory built by
    an older version stays usable until the model changes; new stores are keyed with
    :func:`rag.models.model_revision`.
    """
    path = Path(model)
    if not path.is_dir():
        return None
    files = sorted([*path.glob("*.safetensors"), *path.glob("*.bin")])
    stamp = "|".join(f"{f.name}:{f.stat().st_size}:{f.stat().st_mtime_ns}" for f in files)
    return hashlib.sha256(stamp.encode()).hexdigest()[:16]


def lumen_key(model_id: str, revision: str | None, live_layers: int, max_passage_tokens: int) -> str:
    """16-hex-digit hash of everything stored memory depends on (a local model path counts resolved)."""
    if Path(model_id).exists():
        model_id = str(Path(model_id).resolve())
    spec = {"model": model_id, "revision": revision, "K": live_layers, "Lp": max_passage_tokens,
            "template": PASSAGE_FORMAT, "dtype": "float16", "v": 1}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def reader_revision(model: str | Path, reader: FiDReader) -> str | None:
    """The revision of ``reader``'s weights: from its load (:meth:`FiDReader.from_pretrained`), else
    :func:`rag.models.model_revision` of the folder ``model`` names (None for a name that is none)."""
    from rag.models import model_revision

    if reader.resolved is not None:
        return reader.resolved.revision
    return model_revision(model) if Path(model).is_dir() else None


@torch.no_grad()
def build_lumen_memory(
    index_dir: str | Path, reader: FiDReader, encoder: LumenEncoder, *, model_id: str,
    revision: str | None = None, batch_size: int = 32,
) -> CacheInfo:
    """Compute every passage's memory, store it in the index and record it in ``manifest.json``.

    Args:
        revision: the weights' revision (default: :func:`reader_revision`).

    Returns:
        The manifest record; a previous store with the same key is replaced.
    """
    revision = revision if revision is not None else reader_revision(model_id, reader)
    store = open_passage_store(index_dir)
    try:
        states = passage_memory(reader, encoder, list(store.iter_all()), batch_size)
    finally:
        store.close()
    key = lumen_key(model_id, revision, encoder.live_layers, reader.config.max_passage_tokens)
    info = write_lumen_memory(index_dir, states, model=model_id, key=key, live_layers=encoder.live_layers, revision=revision)
    return record_cache(index_dir, info)


@torch.no_grad()
def passage_memory(reader: FiDReader, encoder: LumenEncoder, passages: Sequence, batch_size: int = 32) -> list[torch.Tensor]:
    """The memory of each passage (objects with ``title`` and ``text``): one ``(Lp_j, d)`` tensor each."""
    texts = [passage_text(p.title, p.text) for p in passages]
    states: list[torch.Tensor] = []
    for i in range(0, len(texts), batch_size):
        chunk = texts[i : i + batch_size]
        x = tokenize(reader.tokenizer, [""] * len(chunk), [[p] for p in chunk], n_passages=1,
                     max_question_tokens=1, max_passage_tokens=reader.config.max_passage_tokens)
        ids, mask = x.passage_ids[:, 0], x.passage_mask[:, 0]  # (b, Lp)
        mem = encoder.memory(ids, mask)  # (b, Lp, d)
        states += [mem[j, : int(mask[j].sum())] for j in range(len(chunk))]
    return states


def open_lumen_memory(index_dir: str | Path, key: str, *also: str) -> LumenStore:
    """Open the index's LUMEN store with ``key`` (or, failing that, one of the keys ``also``).

    Raises:
        IndexFormatError: the index has no such store (names the command that builds it).
    """
    caches = Manifest.read(index_dir).caches
    for k in (key, *also):
        for info in caches:
            if info.kind == "lumen" and info.key == k:
                return LumenStore(index_dir, info)
    raise IndexFormatError(f"{index_dir}: no LUMEN memory for this model and --live-layers; build it with `rag cache lumen`")


def open_reader_memory(index_dir: str | Path, model: str | Path, reader: FiDReader, live_layers: int) -> LumenStore:
    """The index's LUMEN store for ``reader`` (loaded from ``model``) and ``K = live_layers``; a
    store keyed by an older version's :func:`legacy_revision` of the same files is accepted.

    Raises:
        IndexFormatError: no store for this model, ``K`` and passage truncation.
    """
    Lp = reader.config.max_passage_tokens
    key = lumen_key(str(model), reader_revision(model, reader), live_layers, Lp)
    return open_lumen_memory(index_dir, key, lumen_key(str(model), legacy_revision(model), live_layers, Lp))


def attach_memory(inputs: FiDInputs, store: LumenStore, rows: Sequence[Sequence[int]]) -> FiDInputs:
    """Return ``inputs`` with the stored memory of passage ``rows[b][n]`` as ``memory`` ``(B, N, Lp, d)``.

    Raises:
        IndexFormatError: a stored length differs from this tokenization (the store was built differently).
    """
    B, N, Lp = inputs.passage_ids.shape
    memory = torch.zeros(B, N, Lp, store.dim, dtype=torch.float16)  # (B, N, Lp, d)
    for b, row in enumerate(rows):
        for n, m in enumerate(store.get(list(row)[:N])):
            if m.shape[0] != int(inputs.passage_mask[b, n].sum()):
                raise IndexFormatError("LUMEN memory: stored passage length differs from this tokenization; rebuild it")
            memory[b, n, : m.shape[0]] = m
    return dataclasses.replace(inputs, memory=memory)
