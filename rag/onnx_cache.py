"""The on-disk cache of exported ONNX encoder graphs: the export is paid once per model.

Exporting MiniLM to ONNX takes ~1.3 s, fusing it ~2 s and quantising it to int8 ~2.5 s more on a 2-core CPU;
since ``onnx-int8`` is the CPU default (:mod:`rag.encoder`), every ``rag search``, ``rag index``
and service start would pay that. The serialized graph is therefore kept in
``$RAG_ONNX_CACHE``, else ``$XDG_CACHE_HOME/rag-toolkit/onnx`` (default
``~/.cache/rag-toolkit/onnx``), one file per graph (MiniLM: ~90 MB fp32, ~23 MB int8).

A file is named by the sha256 of everything the graph depends on: the weights themselves (every
tensor of the model's state dict: name, dtype, shape and bytes, so a model folder retrained in
place never reuses a stale graph), the model's configuration, the inputs, the opset, whether it
is quantised, whether it is fused, the export's ``FORMAT`` (so a graph cached before fusion is
rebuilt), and the versions of torch, transformers, onnx and onnxruntime that exported, fused and
quantised it. Hashing MiniLM's 90 MB of weights costs ~0.2 s. Files are written atomically
(a temporary file renamed into place), so concurrent processes (service workers) never read a
half-written graph; an unwritable cache folder only costs the export again (one warning per
process names the folder and ``$RAG_ONNX_CACHE``), and a file that ONNX Runtime cannot load is exported again and replaced. Beside the
graphs, ``fast/`` holds small entries keyed by model-folder fingerprints, which find a graph
without loading the weights (:mod:`rag.onnx_fast`).

Example:
    >>> key = graph_key(b"weights-digest", quantize=True, inputs=("input_ids",), opset=17)
    >>> len(key)
    64
"""

from __future__ import annotations

import hashlib
import logging
import os
from importlib import metadata
from pathlib import Path

CACHE_ENV = "RAG_ONNX_CACHE"
# bump when the export itself changes (wrapper module, output names, fusion, quantisation settings);
# the torch-free entries (rag.onnx_fast) include it too. 2: fused transformer graph (rag.onnx_fuse)
FORMAT = "2"
_VERSIONS = ("torch", "transformers", "onnx", "onnxruntime")

log = logging.getLogger(__name__)


def cache_dir() -> Path:
    """``$RAG_ONNX_CACHE``, else ``$XDG_CACHE_HOME/rag-toolkit/onnx`` (default ``~/.cache/rag-toolkit/onnx``)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "rag-toolkit" / "onnx"


def model_digest(auto_model) -> bytes:
    """sha256 of a ``transformers`` model's configuration and every tensor of its state dict."""
    import torch

    h = hashlib.sha256(auto_model.config.to_json_string(use_diff=False).encode())
    for name, tensor in sorted(auto_model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}\n".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy())  # the raw bytes, any dtype (bf16 too)
    return h.digest()


def library_versions() -> list[str]:
    """``package=version`` of the packages that export and run graphs (read from metadata, nothing imported)."""
    versions = []
    for package in _VERSIONS:
        try:
            versions.append(f"{package}={metadata.version(package)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{package}=?")
    return versions


def graph_key(weights: bytes, *, quantize: bool, inputs: tuple[str, ...], opset: int, fused: bool = True) -> str:
    """The cache file name (hex sha256) of a graph exported from weights of digest ``weights``."""
    parts = [FORMAT, weights.hex(), f"int8={quantize}", ",".join(inputs), f"opset={opset}", f"fused={fused}",
             *library_versions()]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def read_graph(key: str) -> bytes | None:
    """The cached graph ``key``, or ``None`` when absent or unreadable."""
    try:
        return (cache_dir() / f"{key}.onnx").read_bytes()
    except OSError:
        return None


def write_graph(key: str, graph: bytes) -> None:
    """Store ``graph`` as ``key`` atomically; a failure (read-only or full disk) is logged and ignored."""
    write_file(cache_dir() / f"{key}.onnx", graph)


def write_file(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file renamed into place); a refused write is logged and ignored."""
    from indexes.atomic import atomic_write_bytes
    from indexes.errors import StorageError

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, data)
    except (OSError, StorageError) as exc:
        _warn_unwritable(path.parent, exc)


def _warn_unwritable(folder: Path, exc: BaseException) -> None:
    """Log one warning per process that the cache cannot be written (each later refusal at debug level)."""
    global _warned
    if _warned:
        log.debug("not cached in %s: %s", folder, exc)
        return
    _warned = True
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    log.warning("ONNX graph cache %s is not writable (%s): every run exports the encoder again (~12 s on a "
                "2-core CPU); set $%s to a writable folder", folder, reason, CACHE_ENV)


_warned = False  # whether _warn_unwritable has warned in this process
