"""The Typer application and its command groups; command modules register on these."""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer(
    name="rag",
    help="Index corpora, search them (BM25, dense, hybrid), train retrievers, answer questions, evaluate.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # plain click help: rich markup would eat "[passages]" in help texts and print flags as "<bool>"
    rich_markup_mode=None,
)
eval_app = typer.Typer(help="Evaluate retrieval runs and QA pipelines.", no_args_is_help=True, rich_markup_mode=None)
train_app = typer.Typer(help="Train retrievers, readers and generators.", no_args_is_help=True, rich_markup_mode=None)
cache_app = typer.Typer(help="Precompute generator states (passage KV caches, LUMEN memory).", no_args_is_help=True,
                        rich_markup_mode=None)
models_app = typer.Typer(help="Local models: convert named models and GGUF files into Hugging Face folders.",
                         no_args_is_help=True, rich_markup_mode=None)

app.add_typer(eval_app, name="eval")
app.add_typer(train_app, name="train")
app.add_typer(cache_app, name="cache")
app.add_typer(models_app, name="models")


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            number = version("rag-toolkit")
        except PackageNotFoundError:  # run from a source tree that was never installed
            number = "unknown (not installed)"
        typer.echo(f"rag {number}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.", callback=_print_version,
                                          is_eager=True)] = False,
) -> None:
    """Index corpora, search them (BM25, dense, hybrid), train retrievers, answer questions, evaluate."""
