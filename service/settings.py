"""The service's one configuration object, read from ``RAG_*`` environment variables.

Every limit the API enforces lives here, typed and immutable after construction, and the
request schemas are generated from it (see :mod:`service.schemas`), so the OpenAPI document
states the same limits the server applies.

Example:
    >>> s = Settings(indexes={"demo": "build/demo-index"}, api_key="s3cret")
    >>> s.default_index, s.max_k
    ('demo', 100)

    From the environment: ``RAG_INDEXES='{"scifact": "build/scifact"}' RAG_API_KEY=... rag serve``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: Index names are what clients send; they are never paths (no "/", no "..").
INDEX_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class Settings(BaseSettings):
    """Configuration of one service process.

    Attributes:
        indexes: index name → index directory. Clients select an index by name only; no
            request ever names a path.
        default_index: index used when a request names none (default: the first one).
        api_key: when set, every API route needs ``Authorization: Bearer <key>``.
        max_query_chars: longest query or question accepted.
        max_k: most results one query may ask for.
        max_batch: most queries in one ``/search/batch`` request.
        max_body_bytes: largest request body accepted (413 beyond).
        cors_origins: origins allowed by CORS; empty = CORS off.
        microbatch_wait_ms: how long the encoder waits for more queries after the first.
        microbatch_max: most queries in one encoder call (default: 64 for torch; 1 for the ONNX
            backends, which then encode first come, first served on each encoder thread).
        encoder_backend: how queries are encoded: ``torch``, ``onnx`` (same scores to ~1e-6,
            faster per query) or ``onnx-int8`` (quantised; quality in docs/benchmarks.md).
        query_encoder: encode queries with this model, distilled from the indexes' encoder by
            ``rag train query-encoder`` (fewer layers: faster; quality in docs/benchmarks.md).
        encoder_batch_size: queries per forward pass within an encoder call (default: 8 for
            torch, 1 for the ONNX backends, which pay no per-call overhead worth amortising).
        encoder_threads: threads running encoder calls side by side, each on its own batch
            (default: one per CPU core).
        threads: worker threads for blocking work (search, encoding waits, answers).
        torch_threads: intra-op threads of the encoder (``None``: torch's own choice).
        passage_cache: passages kept in memory after their first read (0: always read SQLite).
        generator: model for ``/answer`` (a name as :func:`rag.models.resolve_model` takes it: ``smollm2``,
            a folder, a ``.gguf`` file or a cached HF id); none = extractive.
        generator_kind: ``decoder`` (causal LM), ``fid`` (T5-family Fusion-in-Decoder reader) or
            ``auto`` (``fid`` when the model is an encoder-decoder).
        fid_passages: passages a FiD reader reads (at most the request's ``k``).
        fid_live_layers: FiD with LUMEN memory: run only the last K encoder layers, reading each
            index's precomputed memory (``rag cache lumen`` with the same model and K).
        generator_device: device of the generator.
        answer_max_new_tokens: generated tokens at most per answer.
        device: encoder device (``cpu``, ``cuda``); default: CUDA when available.
    """

    model_config = SettingsConfigDict(env_prefix="RAG_", frozen=True, extra="ignore")

    indexes: dict[str, Path] = Field(default_factory=dict)
    default_index: str | None = None
    api_key: SecretStr | None = None
    max_query_chars: int = Field(1000, ge=1)  # ~150 words: generous for search, bounds encoder cost
    max_k: int = Field(100, ge=1)  # the hybrid candidate depth; deeper lists are a batch job
    max_batch: int = Field(64, ge=1)  # one encoder batch (EncoderConfig.batch_size)
    max_body_bytes: int = Field(262_144, ge=1024)  # max_batch · max_query_chars with JSON room
    cors_origins: tuple[str, ...] = ()
    microbatch_wait_ms: float = Field(2.0, ge=0, le=50)  # measured: docs/benchmarks.md (service)
    # ONNX Runtime: a padded batch costs more per query than single calls, and a batch's results
    # are returned together, so its first query waits for the last: one query per call gave
    # p99 169 ms against 282 ms at 32 clients, same req/s (docs/benchmarks.md, service).
    microbatch_max: int | None = Field(None, ge=1)
    encoder_backend: Literal["torch", "onnx", "onnx-int8"] = "torch"
    query_encoder: Path | None = None
    # Forward passes over length-sorted groups of 8 inside one encoder call: a 64-query pass pads
    # every query to the longest and its activations leave the cache; 8 was 1.7x faster per query
    # with torch. ONNX Runtime runs one query in less time per query than any padded group.
    encoder_batch_size: int | None = Field(None, ge=1)
    # Encoder threads (one torch thread each) per process; None: one per CPU core. On 2 cores, 2
    # threads served 107 hybrid req/s against 79 with one (docs/benchmarks.md (service)).
    encoder_threads: int | None = Field(None, ge=1)
    threads: int = Field(64, ge=1)  # ≥ expected concurrent requests, so all can join a batch
    # One intra-op thread: with two, torch's OpenMP workers spin against the event loop and the
    # search threads on a 2-core machine and a single query took 20x longer (benchmarks doc).
    torch_threads: int | None = Field(1, ge=1)
    passage_cache: int = Field(200_000, ge=0)  # passages kept in memory; ~1.5 KB each on SciFact
    generator: str | None = None
    generator_device: str = "cpu"
    generator_kind: Literal["auto", "decoder", "fid"] = "auto"
    fid_passages: int = Field(10, ge=1)
    fid_live_layers: int | None = Field(None, ge=1)
    answer_max_new_tokens: int = Field(256, ge=1)
    device: str | None = None

    @field_validator("indexes")
    @classmethod
    def _names_are_names(cls, value: dict[str, Path]) -> dict[str, Path]:
        for name in value:
            if not INDEX_NAME.match(name):
                raise ValueError(f"index name {name!r}: use letters, digits, '.', '_' or '-' (at most 64)")
        return value

    @model_validator(mode="after")
    def _default_is_configured(self) -> Settings:
        if self.default_index is None and self.indexes:
            object.__setattr__(self, "default_index", next(iter(self.indexes)))
        if self.default_index is not None and self.default_index not in self.indexes:
            raise ValueError(f"default_index {self.default_index!r} is not one of the configured indexes")
        return self


def indexes_from_args(values: list[str]) -> dict[str, Path]:
    """``["DIR", "name=DIR", ...]`` → ``{name: DIR}``; a bare ``DIR`` is named after its folder.

    Raises:
        ValueError: two indexes share a name.
    """
    out: dict[str, Path] = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or not INDEX_NAME.match(name):
            name, path = Path(value).resolve().name, value
        if name in out:
            raise ValueError(f"two indexes are named {name!r}: name them, e.g. --index {name}2={path}")
        out[name] = Path(path)
    return out
