"""Query encoding from a cached ONNX graph without importing torch (one-shot start-up).

``import sentence_transformers`` (torch, transformers, scikit-learn) costs ~6 s of CPU on a 2-core
machine, more than a one-shot dense ``rag search`` may take in all. Once a model has run on an
ONNX backend its graph is in the cache (:mod:`rag.onnx_cache`), but that cache is keyed by the
loaded weights, which needs torch. So whenever :class:`rag.onnx_backend.OnnxEncoderModel` has a
graph, :class:`rag.encoder.Encoder` also records a small *entry* beside it, named by the model
folder's file fingerprints (every file's relative path, size and modification time, in ns) plus
the quantisation, opset, graph format (:data:`rag.onnx_cache.FORMAT`: an entry never leads to a
graph of an older export) and library versions. The entry holds the graph's key, the exact
``tokenizers`` state the ``transformers`` fast tokenizer runs (its serialized backend, so
tokenizer-config overrides such as ``do_lower_case`` are included), the padding and truncation
settings, pooling, dimension and default window.

A later load finds the entry from the folder alone, checks the folder's sentence-transformers
pipeline (``modules.json``: Transformer → Pooling [→ Normalize]; ``1_Pooling/config.json``: the
recorded pooling over all tokens; ``sentence_bert_config.json``: no lower-casing) and builds an
encoder from onnxruntime + ``tokenizers`` only. Its vectors are those of the torch-loaded
``OnnxEncoderModel``: it is the same class with the same pooling code, fed the same token ids.
Any file of the folder touched, replaced or added changes the fingerprint; then the entry is not
found and the usual (torch) load runs, and records a new one.

Example:
    >>> fast = load(Path(folder), quantize=True, threads=1)   # doctest: +SKIP
    >>> fast.model.encode(["what is BM25?"]).shape             # doctest: +SKIP
    (1, 384)
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag import onnx_cache

FORMAT = "1"
_MODULES = {"sentence_transformers.models.Transformer": "Transformer", "sentence_transformers.models.Pooling": "Pooling",
            "sentence_transformers.models.Normalize": "Normalize"}
_OTHER_POOLING = ("pooling_mode_weightedmean_tokens", "pooling_mode_mean_sqrt_len_tokens", "pooling_mode_lasttoken")

log = logging.getLogger(__name__)


def no_accelerator() -> bool:
    """Whether this machine surely has no GPU torch could pick (Linux without NVIDIA, ROCm or WSL GPU devices)."""
    import sys

    return sys.platform.startswith("linux") and not any(
        os.path.exists(p) for p in ("/proc/driver/nvidia", "/dev/nvidiactl", "/dev/nvidia0", "/dev/kfd", "/dev/dxg"))


def folder_fingerprint(folder: Path) -> str:
    """Hex sha256 of every file's relative path, size and mtime (ns) under ``folder`` (links followed)."""
    h = hashlib.sha256(str(folder.resolve()).encode())
    for root, dirs, files in os.walk(folder, followlinks=True):
        dirs.sort()
        for name in sorted(files):
            path = Path(root) / name
            st = path.stat()
            h.update(f"{path.relative_to(folder)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def entry_key(folder: Path, *, quantize: bool, opset: int) -> str:
    """The file name of the entry of ``folder``'s graph (see the module docstring)."""
    versions = onnx_cache.library_versions()
    parts = [FORMAT, f"graph-format={onnx_cache.FORMAT}", folder_fingerprint(folder), f"int8={quantize}", f"opset={opset}",
             *versions]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def record(folder: Path, model, *, max_seq_length: int, dim: int, opset: int) -> None:
    """Write the entry that lets ``folder`` load without torch next time (``model``: an ``OnnxEncoderModel``).

    A tokenizer without a ``tokenizers`` backend (a slow tokenizer) records nothing.
    """
    tok = model.tokenizer
    backend = getattr(tok, "backend_tokenizer", None)
    if backend is None:
        return
    entry = {"graph": model.key, "inputs": list(model.input_names), "quantized": model.quantized, "pooling": model.pooling,
             "max_seq_length": int(max_seq_length), "dim": int(dim), "tokenizer": backend.to_str(),
             "truncation_side": tok.truncation_side, "padding_side": tok.padding_side, "pad_token": tok.pad_token,
             "pad_id": tok.pad_token_id, "pad_type_id": tok.pad_token_type_id}
    key = entry_key(folder, quantize=model.quantized, opset=opset)
    onnx_cache.write_file(onnx_cache.cache_dir() / "fast" / f"{key}.json", json.dumps(entry).encode())


class FastTokenizer:
    """The ``transformers`` fast tokenizer's ``__call__`` for what the ONNX encoder asks of it, on ``tokenizers``.

    Thread-safe: ``tokenizers`` keeps padding and truncation as state of the ``Tokenizer`` object,
    so each setting gets its own object, configured once and then only read (service encoder
    threads tokenise at once; re-configuring one shared object per call let a call run with
    another's settings, e.g. untruncated).
    """

    def __init__(self, entry: dict) -> None:
        self.entry = entry
        self._configured: dict[tuple, object] = {}
        self._lock = threading.Lock()

    def _tokenizer(self, padding: bool, truncation: bool, max_length: int | None):
        key = (bool(padding), bool(truncation and max_length), max_length if truncation else None)
        tok = self._configured.get(key)
        if tok is None:
            from tokenizers import Tokenizer

            e = self.entry
            tok = Tokenizer.from_str(e["tokenizer"])
            tok.no_truncation()
            tok.no_padding()
            if key[1]:
                tok.enable_truncation(max_length, strategy="longest_first", direction=e["truncation_side"])
            if padding and e["pad_token"] is not None:
                tok.enable_padding(direction=e["padding_side"], pad_id=e["pad_id"], pad_type_id=e["pad_type_id"],
                                   pad_token=e["pad_token"])
            with self._lock:
                tok = self._configured.setdefault(key, tok)
        return tok

    def __call__(self, texts, padding=True, truncation=True, max_length=None, return_tensors="np") -> dict:
        tok = self._tokenizer(padding, truncation, max_length)
        batch = tok.encode_batch(list(texts) if isinstance(texts, (list, tuple)) else [texts])
        return {"input_ids": np.asarray([b.ids for b in batch], np.int64),
                "attention_mask": np.asarray([b.attention_mask for b in batch], np.int64),
                "token_type_ids": np.asarray([b.type_ids for b in batch], np.int64)}


@dataclass(frozen=True)
class FastModel:
    """A torch-free ONNX encoder and what :class:`rag.encoder.Encoder` needs to know of its model."""

    model: object  # an OnnxEncoderModel
    dim: int
    max_seq_length: int


def _pipeline_pooling(folder: Path) -> tuple[Path, str] | None:
    """The Transformer module's folder and pooling mode, from the sentence-transformers files; ``None`` if unsupported."""
    try:
        modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
        kinds = [_MODULES.get(m["type"]) for m in modules]
        if len(kinds) < 2 or kinds[0] != "Transformer" or kinds[1] != "Pooling" or any(k != "Normalize" for k in kinds[2:]):
            return None
        pooling = json.loads((folder / modules[1]["path"] / "config.json").read_text(encoding="utf-8"))
        transformer = folder / modules[0]["path"]
        st_config = json.loads((transformer / "sentence_bert_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    modes = [m for m in ("mean", "cls", "max") if pooling.get(f"pooling_mode_{m}_tokens")]
    if len(modes) != 1 or any(pooling.get(k) for k in _OTHER_POOLING) or not pooling.get("include_prompt", True):
        return None
    if st_config.get("do_lower_case"):
        return None
    return transformer, modes[0]


def load(folder: Path, *, quantize: bool, threads: int, opset: int, max_length: int | None = None) -> FastModel | None:
    """The torch-free encoder of ``folder`` when its entry and graph are cached and its pipeline is supported, else ``None``.

    Args:
        max_length: the window in tokens (default: the model's own, as recorded).
    """
    from rag.onnx_backend import OnnxEncoderModel

    try:
        path = onnx_cache.cache_dir() / "fast" / f"{entry_key(folder, quantize=quantize, opset=opset)}.json"
        entry = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    found = _pipeline_pooling(folder)
    if found is None or found[1] != entry.get("pooling") or entry.get("quantized") != quantize:
        return None
    graph = onnx_cache.read_graph(entry["graph"])
    if graph is None:
        return None
    try:
        model = OnnxEncoderModel.from_graph(graph, FastTokenizer(entry), pooling=entry["pooling"], inputs=entry["inputs"],
                                            max_length=max_length or entry["max_seq_length"], quantize=quantize, threads=threads,
                                            key=entry["graph"])
    except Exception as exc:  # a damaged graph or tokenizer: the usual load replaces them
        log.debug("torch-free ONNX load of %s failed (%s)", folder, exc)
        return None
    return FastModel(model, int(entry["dim"]), int(entry["max_seq_length"]))
