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

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError
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
        max_connections: open connections per worker process; one more is answered 503 and
            closed before anything is read (:mod:`service.connections`).
        max_header_bytes: longest request head (request line and headers) accepted (431 beyond).
        header_timeout_s: time a request head may take to arrive, from the connection's opening
            or the next request's first byte (408 beyond): slow-header clients are cut off.
        writable: serve ``PUT``/``DELETE /indexes/{name}/documents`` (upsert, delete).
        max_upsert_documents: documents per upsert request at most.
        body_timeout_s: longest silence while a request body is being read (408 beyond).
        cors_origins: origins allowed by CORS; empty = CORS off.
        microbatch_wait_ms: how long the encoder waits for more queries after the first.
        microbatch_max: most queries in one encoder call (default: 64 for torch; 1 for the ONNX
            backends, which then encode first come, first served on each encoder thread).
        encoder_backend: how queries are encoded: ``auto`` (default: the backend that encoded each
            index's passages, as ``rag search`` does — ``onnx-int8`` for an index built with the
            defaults on a CPU; ``torch`` on a GPU; :func:`rag.encoder.resolve_backend`), ``torch``,
            ``onnx`` (same scores to ~1e-6, faster per query) or ``onnx-int8`` (quantised; quality
            in docs/benchmarks.md).
        query_encoder: encode queries with this model, distilled from the indexes' encoder by
            ``rag train query-encoder`` (fewer layers: faster; quality in docs/benchmarks.md).
        encoder_batch_size: queries per forward pass within an encoder call (default: 8 for
            torch, 1 for the ONNX backends, which pay no per-call overhead worth amortising). These
            backend-dependent defaults follow the backend ``auto`` resolves to.
        encoder_threads: threads running encoder calls side by side, each on its own batch
            (default: one per CPU core).
        shared_passes: encode the queries of a micro-batch in shared forward passes (faster with
            torch under load, but a score's last bits then depend on its batch neighbours: within
            1e-6 of ``rag search``). Off: every query is encoded alone, bit-identical to ``rag search``.
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
        rerank: cross-encoder reranking the first stage's top passages (:mod:`rag.rerank`; a local
            folder or cached HF id); requests opt out with ``"rerank": false``.
        rerank_depth: passages reranked per query unless a request sets ``rerank_depth``.
        max_rerank_depth: the largest ``rerank_depth`` a request may ask for.
        rerank_weight: α of the cross-encoder's score against the first stage's, unless a request
            sets ``rerank_weight`` (``None``: the model's ``rerank.json``, else 1).
    """

    model_config = SettingsConfigDict(env_prefix="RAG_", frozen=True, extra="ignore")

    indexes: dict[str, Path] = Field(default_factory=dict)
    default_index: str | None = None
    api_key: SecretStr | None = None
    max_query_chars: int = Field(1000, ge=1)  # ~150 words: generous for search, bounds encoder cost
    max_k: int = Field(100, ge=1)  # the hybrid candidate depth; deeper lists are a batch job
    max_batch: int = Field(64, ge=1)  # one encoder batch (EncoderConfig.batch_size)
    max_body_bytes: int = Field(262_144, ge=1024)  # max_batch · max_query_chars with JSON room
    # Below the usual 1024 open-file soft limit, leaving room for index files, models and logs;
    # slow clients are cut off by the timeouts below, so the cap is reached only by real load.
    max_connections: int = Field(512, ge=1)
    # nginx's default total for a request head (4 x 8 KiB buffers): room for cookies and long URLs.
    max_header_bytes: int = Field(32_768, ge=1024)
    # A head is a few hundred bytes: 10 s is ample on any link, and bounds how long a
    # slow-header (slowloris) connection holds a slot (nginx: 60 s, Apache mod_reqtimeout: 20-40 s).
    header_timeout_s: float = Field(10.0, gt=0, le=300)
    body_timeout_s: float = Field(10.0, gt=0, le=300)  # per gap between body chunks, not the whole body
    cors_origins: tuple[str, ...] = ()
    # PUT/DELETE /indexes/{name}/documents change the index on disk: off unless asked for.
    writable: bool = False
    max_upsert_documents: int = Field(1000, ge=1)  # per request; the body is bounded by max_body_bytes too
    microbatch_wait_ms: float = Field(2.0, ge=0, le=50)  # measured: docs/benchmarks.md (service)
    # ONNX Runtime: a padded batch costs more per query than single calls, and a batch's results
    # are returned together, so its first query waits for the last: one query per call gave
    # p99 169 ms against 282 ms at 32 clients, same req/s (docs/benchmarks.md, service).
    microbatch_max: int | None = Field(None, ge=1)
    # auto: queries run through the backend of each index's passages, so HTTP equals `rag search`.
    encoder_backend: Literal["auto", "torch", "onnx", "onnx-int8"] = "auto"
    query_encoder: Path | None = None
    # Forward passes over length-sorted groups of 8 inside one encoder call: a 64-query pass pads
    # every query to the longest and its activations leave the cache; 8 was 1.7x faster per query
    # with torch. ONNX Runtime runs one query in less time per query than any padded group.
    encoder_batch_size: int | None = Field(None, ge=1)
    # Encoder threads (one torch thread each) per process; None: one per CPU core. On 2 cores, 2
    # threads served 107 hybrid req/s against 79 with one (docs/benchmarks.md (service)).
    encoder_threads: int | None = Field(None, ge=1)
    # Off: HTTP scores equal `rag search` bit for bit (a shared pass changes the 7th digit and can
    # swap near-tied passages); on for throughput when that does not matter (docs/benchmarks.md).
    shared_passes: bool = False
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
    rerank: str | None = None
    rerank_depth: int = Field(100, ge=1)  # the BEIR reranking depth; cost is linear in it
    # ~10 ms per pair for MiniLM-L6 on one CPU core: 200 pairs is already seconds per request.
    max_rerank_depth: int = Field(200, ge=1)
    rerank_weight: float | None = Field(None, ge=0.0, le=1.0)  # None: the weight saved beside the model

    @field_validator("indexes")
    @classmethod
    def _names_are_names(cls, value: dict[str, Path]) -> dict[str, Path]:
        for name in value:
            if not INDEX_NAME.match(name):
                raise ValueError(f"index name {name!r}: use letters, digits, '.', '_' or '-' (at most 64)")
        return value

    @model_validator(mode="after")
    def _default_is_configured(self) -> Settings:
        if self.rerank_depth > self.max_rerank_depth:
            raise _cross_field_error(
                ("rerank_depth", "max_rerank_depth"),
                f"{self.rerank_depth} exceeds {env_var('max_rerank_depth')} ({self.max_rerank_depth}, the largest "
                f"depth served); lower it or raise {env_var('max_rerank_depth')}")
        if self.default_index is None and self.indexes:
            object.__setattr__(self, "default_index", next(iter(self.indexes)))
        if self.default_index is not None and self.default_index not in self.indexes:
            raise _cross_field_error(("default_index", "indexes"), f"{self.default_index!r} is not one of the "
                                     f"configured indexes ({', '.join(map(repr, self.indexes)) or 'none'})")
        return self


def env_var(field: str) -> str:
    """The environment variable of a :class:`Settings` field, e.g. ``rerank_depth`` → ``RAG_RERANK_DEPTH``."""
    return f"{Settings.model_config['env_prefix']}{field.upper()}"


def _cross_field_error(fields: tuple[str, ...], message: str) -> PydanticCustomError:
    """A model-level error that names its settings (the first is the one reported as at fault)."""
    return PydanticCustomError("settings_conflict", "{message}", {"message": message, "fields": fields})


def settings_error(exc: ValidationError, flags: dict[str, str] | None = None) -> str:
    """One line per failing setting, each naming the option (``flags``: field → CLI flag) and its ``RAG_*``
    variable, without pydantic's ``Value error,`` prefixes.

    Example:
        >>> try:
        ...     Settings(rerank_depth=500)
        ... except ValidationError as exc:
        ...     print(settings_error(exc, {"rerank_depth": "--rerank-depth"}))
        setting rerank_depth (--rerank-depth, RAG_RERANK_DEPTH): 500 exceeds RAG_MAX_RERANK_DEPTH (200, the largest depth served); lower it or raise RAG_MAX_RERANK_DEPTH
    """
    flags = flags or {}
    lines = []
    for error in exc.errors(include_url=False):
        ctx = error.get("ctx") or {}
        loc = [str(p) for p in error.get("loc", ())]
        field = loc[0] if loc else next(iter(ctx.get("fields", ())), "")
        names = ", ".join(n for n in (flags.get(field), env_var(field) if field else None) if n)
        where = ".".join(loc) or field or "settings"
        message = str(ctx["error"]) if error.get("type") == "value_error" and "error" in ctx else error["msg"]
        if loc and isinstance(error.get("input"), (str, int, float)) and error.get("type") != "value_error":
            message += f", got {error['input']!r}"
        lines.append(f"setting {where}{f' ({names})' if names else ''}: {message}")
    return "; ".join(lines)


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
