"""``rag cache build``: precompute and store the passage KV states of a generator."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rag.cli.apps import cache_app


@cache_app.command("build")
def cache_build_command(
    generator: Annotated[str, typer.Option("--generator", "-g", help="Causal LM with rotary positions: smollm2, a model or LoRA adapter folder, a .gguf file, or a cached HF id.")],
    index: Annotated[Path, typer.Option("--index", "-i", help="Index directory.")] = Path("index"),
    dtype: Annotated[str, typer.Option(help="Storage dtype: float16, bfloat16 or float32.")] = "float16",
    model_dtype: Annotated[str, typer.Option(help="Generator dtype while encoding.")] = "float32",
    device: Annotated[str, typer.Option(help="Generator device, e.g. cpu or cuda.")] = "cpu",
    limit: Annotated[int | None, typer.Option(help="Only the first N passages (quick checks).", min=1)] = None,
) -> None:
    """Encode every passage of INDEX as a KV block after the shared prompt prefix (resumable)."""
    from indexes.errors import InputError
    from rag.generation.cache_build import build_passage_cache
    from rag.generation.generator import Generator, GeneratorConfig
    from rag.generation.passage_cache import CacheConfig

    if dtype not in ("float16", "bfloat16", "float32"):
        raise InputError(f"--dtype must be float16, bfloat16 or float32, not {dtype!r}")
    gen = Generator.load(GeneratorConfig(generator, dtype=model_dtype, device=device))
    report = build_passage_cache(index, gen, CacheConfig(dtype=dtype), progress=True, limit=limit)
    typer.echo(
        f"KV cache {report.info.path}: {report.info.passages} passages ({report.encoded} encoded, "
        f"{report.skipped} already stored) at {report.passages_per_second:.1f} passages/s"
    )
