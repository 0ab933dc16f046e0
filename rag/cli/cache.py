"""``rag cache build``: precompute and store the passage KV states of a generator."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rag.cli.apps import cache_app
from rag.cli.choices import ModelDType, SearchMode, StoreDType
from rag.cli.options import DeviceOption, RayOption, RayWorkersOption, index_device, ray_config, resolve_device
from rag.wording import counted


@cache_app.command("build")
def cache_build_command(
    generator: Annotated[str, typer.Option("--generator", "-g", help="Causal LM with rotary positions: smollm2, a model or LoRA adapter folder, a .gguf file, or a cached HF id.")],
    index: Annotated[Path, typer.Option("--index", "-i", help="Index directory.")] = Path("index"),
    dtype: Annotated[StoreDType, typer.Option(help="Storage dtype of the states.")] = "float16",
    model_dtype: Annotated[ModelDType, typer.Option(help="Generator dtype while encoding.")] = "float32",
    device: DeviceOption = "auto",
    limit: Annotated[int | None, typer.Option(help="Only the first N passages (quick checks).", min=1)] = None,
    budget_bytes: Annotated[int | None, typer.Option(help="Disk budget: store only the passages --queries retrieves most "
                                                          "whose states fit in this many bytes.", min=0)] = None,
    queries: Annotated[Path | None, typer.Option(help="Query log ranking passages for --budget-bytes (queries JSONL/TSV, "
                                                      "as `rag search --queries`).")] = None,
    mode: Annotated[SearchMode, typer.Option(help="Retrieval mode that ranks --queries' passages.")] = "hybrid",
    k: Annotated[int, typer.Option("-k", help="Passages retrieved per logged query (as `rag ask -k`).", min=1, max=100)] = 5,
    ray: RayOption = None,
    ray_workers: RayWorkersOption = 2,
) -> None:
    """Encode every passage of INDEX (or a budget's most retrieved) as a KV block after the shared prompt prefix (resumable)."""
    import contextlib

    from indexes.errors import InputError
    from rag.generation.cache_build import CacheBudget, build_passage_cache
    from rag.generation.generator import Generator, GeneratorConfig
    from rag.generation.passage_cache import CacheConfig

    if (budget_bytes is None) != (queries is None):
        raise InputError("--budget-bytes and --queries FILE go together (the log decides which passages fill the budget)")
    budget = None if queries is None else CacheBudget(counts=_log_counts(index, queries, mode, k, device), budget_bytes=budget_bytes)
    ray_cfg = ray_config(ray, ray_workers)
    gen_config = GeneratorConfig(generator, dtype=model_dtype, device=resolve_device(device))
    gen = Generator.load(gen_config)
    runtime = contextlib.nullcontext()
    if ray_cfg is not None:
        from rag.ray_pipeline import ray_runtime

        runtime = ray_runtime(ray_cfg)
    with runtime:
        report = build_passage_cache(index, gen, CacheConfig(dtype=dtype), progress=True, limit=limit, budget=budget,
                                     ray=ray_cfg, generator_config=gen_config)
    typer.echo(
        f"KV cache {report.info.path}: {counted(report.info.passages, 'passage')} ({report.encoded} encoded, "
        f"{report.skipped} already stored) at {report.passages_per_second:.1f} passages/s"
    )
    if report.selection is not None:
        s = report.selection
        typer.echo(f"budget {budget_bytes:,} bytes: {len(s.ids)} of the {counted(s.candidates, 'passage')} the log retrieved "
                   f"({s.bytes:,} bytes)")


def _log_counts(index: Path, queries: Path, mode: str, k: int, device: str = "auto"):
    """Retrievals per passage id of the top-``k`` ``mode`` run of the query log ``queries``."""
    from rag.batch import search_run
    from rag.generation.cache_policy import retrieval_counts
    from rag.index import open_index
    from rag.queries import load_queries

    log = load_queries(queries)
    idx = open_index(index, device=index_device(device))
    try:
        return retrieval_counts(search_run(idx, log, mode, k=k, per_doc=False))
    finally:
        idx.close()
