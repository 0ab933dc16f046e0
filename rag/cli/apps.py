"""The Typer application and its command groups; command modules register on these."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="rag",
    help="Index corpora, search them (BM25, dense, hybrid), train retrievers, answer questions, evaluate.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
eval_app = typer.Typer(help="Evaluate retrieval runs and QA pipelines.", no_args_is_help=True)
train_app = typer.Typer(help="Train retrievers, readers and generators.", no_args_is_help=True)
cache_app = typer.Typer(help="Precompute generator states (passage KV caches, LUMEN memory).", no_args_is_help=True)
models_app = typer.Typer(help="Local models: convert named models and GGUF files into Hugging Face folders.", no_args_is_help=True)

app.add_typer(eval_app, name="eval")
app.add_typer(train_app, name="train")
app.add_typer(cache_app, name="cache")
app.add_typer(models_app, name="models")
