"""``rag serve``: the REST service (:mod:`service`) under uvicorn."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rag.cli.apps import app
from rag.cli.checks import check_rerank_options, number_in
from rag.cli.choices import LogLevel
from rag.cli.options import RerankWeightOption
from rag.encoder import Backend


#: The option of each setting the command line sets (the others are RAG_* variables only).
_FLAGS = {"indexes": "--index", "api_key": "--api-key", "writable": "--writable", "generator": "--generator",
          "rerank": "--rerank", "rerank_depth": "--rerank-depth", "rerank_weight": "--rerank-weight",
          "fid_live_layers": "--fid-live-layers", "microbatch_wait_ms": "--microbatch-wait-ms",
          "torch_threads": "--torch-threads", "encoder_backend": "--encoder-backend", "query_encoder": "--query-encoder",
          "encoder_threads": "--encoder-threads", "max_connections": "--max-connections",
          "max_header_bytes": "--max-header-bytes", "header_timeout_s": "--header-timeout", "body_timeout_s": "--body-timeout"}


@app.command("serve")
def serve_command(
    ctx: typer.Context,
    index: Annotated[list[str], typer.Option("--index", "-i", help="Index directory, or NAME=DIR (repeatable); clients select indexes by NAME (default: the folder name).")],
    host: Annotated[str, typer.Option(help="Interface to bind; 0.0.0.0 exposes the service to the network.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.", min=0, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes (each loads the models); see docs/benchmarks.md (service).", min=1)] = 1,
    api_key: Annotated[str | None, typer.Option(envvar="RAG_API_KEY", show_envvar=True, help="Require 'Authorization: Bearer KEY' (prefer the environment variable).")] = None,
    generator: Annotated[str | None, typer.Option(help="Model for /answer: smollm2, a folder, a .gguf file or a cached HF id; a causal LM or a T5-family FiD reader; default: extractive answers.")] = None,
    fid_live_layers: Annotated[int | None, typer.Option(help="FiD generator: read each index's LUMEN memory (`rag cache lumen`) and run only the last K encoder layers.", min=1)] = None,
    microbatch_wait_ms: Annotated[float | None, typer.Option(help="Longest wait for more queries to batch with the first.", min=0, max=50)] = None,
    torch_threads: Annotated[int | None, typer.Option(help="Encoder threads per worker (default 1: see docs/benchmarks.md (service)).", min=1)] = None,
    encoder_backend: Annotated[Backend | None, typer.Option(help="Query encoding: auto (default: the backend of each index's passages on CPU, torch on a GPU), torch, onnx (same scores to ~1e-6) or onnx-int8 (quantised; see docs/benchmarks.md).")] = None,
    query_encoder: Annotated[Path | None, typer.Option(help="Encode queries with this model, distilled from the indexes' encoder (`rag train query-encoder`).")] = None,
    encoder_threads: Annotated[int | None, typer.Option(help="Encoder threads per worker, each on its own micro-batch (default: cores / workers).", min=1)] = None,
    max_connections: Annotated[int | None, typer.Option(help="Open connections per worker; more are answered 503 at once (default 512).", min=1)] = None,
    max_header_bytes: Annotated[int | None, typer.Option(help="Longest request head (request line + headers) in bytes; longer: 431 (default 32768).", min=1024)] = None,
    header_timeout: Annotated[float | None, typer.Option(help="Seconds a request head may take to arrive; slower: 408 and closed (default 10).", min=0.001, max=300)] = None,
    body_timeout: Annotated[float | None, typer.Option(help="Longest pause in seconds while a request body is read; longer: 408 (default 10).", min=0.001, max=300)] = None,
    writable: Annotated[bool, typer.Option("--writable", help="Serve PUT/DELETE /indexes/NAME/documents (upsert, delete; behind --api-key when set).")] = False,
    graceful_timeout: Annotated[float, typer.Option(help="Seconds in-flight requests get to finish on shutdown.", min=0, callback=number_in(0, None))] = 30.0,
    log_level: Annotated[LogLevel, typer.Option(help="uvicorn log level.")] = "info",
    rerank: Annotated[str | None, typer.Option("--rerank", help="Cross-encoder reranking the top passages of every search and answer (requests may opt out: \"rerank\": false).")] = None,
    rerank_depth: Annotated[int | None, typer.Option("--rerank-depth", help="Passages reranked per query, at most RAG_MAX_RERANK_DEPTH (default 200); default 100; requests may set rerank_depth up to the same cap.", min=1)] = None,
    rerank_weight: RerankWeightOption = None,
) -> None:
    """Serve search and answers over HTTP (OpenAPI at /docs). Other limits: RAG_* variables (service/settings.py)."""
    check_rerank_options(ctx, rerank)
    import json
    import os
    import tempfile

    import uvicorn
    from pydantic import ValidationError

    from indexes.errors import InputError, RagError
    from indexes.manifest import Manifest
    from rag.encoder import check_query_encoder
    from service.settings import Settings, indexes_from_args, settings_error

    try:
        named = indexes_from_args(index)
    except ValueError as exc:
        raise InputError(f"--index: {exc}") from None
    for name, path in named.items():  # a wrong path stops here with one line, not a uvicorn traceback
        try:
            manifest = Manifest.read(path)
            if query_encoder is not None and manifest.dense is not None:
                check_query_encoder(query_encoder, manifest.dense.encoder, f"index {name!r}")
        except RagError as exc:
            raise type(exc)(f"--index {name}: {exc}") from None
    # Workers are separate processes that build their settings from the environment, so the
    # command line is passed on as RAG_* variables (also when there is a single worker).
    env = {"RAG_INDEXES": json.dumps({k: str(Path(v).resolve()) for k, v in named.items()})}
    if api_key:
        env["RAG_API_KEY"] = api_key
    if writable:
        env["RAG_WRITABLE"] = "1"
    if generator:
        from rag.models import resolve_model

        resolve_model(generator, "generator")  # fails here if missing; a GGUF is converted once, before the workers
        env["RAG_GENERATOR"] = generator
    if rerank:
        from rag.models import resolve_model

        resolve_model(rerank, "cross-encoder")  # fails here, once, with one line, if missing
        env["RAG_RERANK"] = rerank
    if rerank_depth is not None:
        env["RAG_RERANK_DEPTH"] = str(rerank_depth)
    if rerank_weight is not None:
        env["RAG_RERANK_WEIGHT"] = str(rerank_weight)
    if fid_live_layers is not None:
        if not generator:
            raise InputError("--fid-live-layers needs --generator T5_MODEL_DIR")
        env["RAG_FID_LIVE_LAYERS"] = str(fid_live_layers)
    if microbatch_wait_ms is not None:
        env["RAG_MICROBATCH_WAIT_MS"] = str(microbatch_wait_ms)
    if torch_threads:
        env["RAG_TORCH_THREADS"] = str(torch_threads)
    if encoder_backend:
        env["RAG_ENCODER_BACKEND"] = encoder_backend
    if query_encoder:
        env["RAG_QUERY_ENCODER"] = str(query_encoder.resolve())
    if encoder_threads or workers > 1:  # default: the cores shared out between the workers
        env["RAG_ENCODER_THREADS"] = str(encoder_threads or max(1, (os.cpu_count() or 1) // workers))
    for name, value in (("MAX_CONNECTIONS", max_connections), ("MAX_HEADER_BYTES", max_header_bytes),
                        ("HEADER_TIMEOUT_S", header_timeout), ("BODY_TIMEOUT_S", body_timeout)):
        if value is not None:
            env[f"RAG_{name}"] = str(value)
    os.environ.update(env)
    try:
        settings = Settings()  # fail here, with the field named, rather than in every worker
    except ValidationError as exc:
        raise InputError(settings_error(exc, _FLAGS)) from None
    with tempfile.TemporaryDirectory(prefix="rag-metrics-") as metrics_dir:
        if workers > 1:  # prometheus-client aggregates the workers' metrics through files here
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
        # The guarded protocol bounds open connections, request-head size and time, which uvicorn's
        # own options do not (service/connections.py); h11's head limit is set for completeness.
        # The class itself, not an import string: uvicorn < 0.30 looks strings up in its own table.
        from service.connections import GuardedHTTPProtocol

        uvicorn.run("service.app:create_app", factory=True, host=host, port=port, workers=workers,
                    log_level=log_level, access_log=False, timeout_graceful_shutdown=graceful_timeout,
                    http=GuardedHTTPProtocol, h11_max_incomplete_event_size=settings.max_header_bytes)
