"""The ``rag`` command line: the composition root.

Each command lives in its own module of this package (``index``, ``search``, ``eval_retrieval``,
``eval_qa``, ``ask``, ``live`` (add, delete, compact, check), ``cache``, ``serve``, ``train_reader``,
``train_generator``, ``lumen``, ``train_retriever``, ``train_query_encoder``, ``train_reranker``,
``models``; shared options in ``options``, the generator-path options of ``ask`` and ``eval qa`` in
``path_options``, the fixed value sets of options (``Literal`` choices) in ``choices``, checks of
values that a range cannot express in ``checks``) and
registers itself on :data:`app` or on one of the sub-apps in :mod:`rag.cli.apps`; command bodies
are one or two library calls with heavy imports inside them, so ``rag --help`` stays fast.
:func:`main` turns every :class:`~indexes.errors.RagError`, and any ``OSError`` (a full disk, a
read-only folder) that reaches it, into a one-line message and exit code 1. ``python -m rag.cli``
runs it (``__main__``). Only this package may import ``eval`` and ``service``.
"""

from __future__ import annotations

import importlib
import os
import sys

import click
import typer

from indexes.errors import RagError
from indexes.io_errors import describe_os_error
from rag.cli.apps import app
from rag.cli.options import RAY_LOCAL, optional_value

#: Command modules, imported for their registration side effect on the Typer apps.
COMMAND_MODULES = (
    "rag.cli.index",
    "rag.cli.live",
    "rag.cli.search",
    "rag.cli.eval_retrieval",
    "rag.cli.eval_qa",
    "rag.cli.ask",
    "rag.cli.cache",
    "rag.cli.serve",
    "rag.cli.train_reader",
    "rag.cli.train_generator",
    "rag.cli.lumen",
    "rag.cli.train_retriever",
    "rag.cli.train_query_encoder",
    "rag.cli.train_reranker",
    "rag.cli.models",
)


# typer >= 0.22 raises its own bundled click's exceptions (bases: typer.TyperException), older
# typer raises click's; catch both families so no usage error ever prints a traceback.
_USAGE_ERRORS = tuple(c for c in (getattr(typer, "TyperException", None), click.exceptions.ClickException) if c)
_ABORTS = tuple({typer.Abort, click.exceptions.Abort})


#: pydantic's wording of a value outside an option's ``min``/``max`` (typer >= 0.22 checks values with pydantic).
_BOUND_ERRORS = frozenset({"greater_than_equal", "less_than_equal", "greater_than", "less_than", "finite_number"})


def _plain(message: str) -> str:
    """``message`` without pydantic's ``Value error, `` prefix, which means nothing to a user."""
    return message.replace("Value error, ", "")


def _reword(exc: Exception) -> None:
    """Say a bad option value in the CLI's words: ``0 is not a number in [1, inf)``, no pydantic prefix."""
    if not hasattr(exc, "message"):
        return
    errors = getattr(exc.__cause__, "errors", lambda: [])()
    param = getattr(exc, "param", None)
    if errors and errors[0].get("type") in _BOUND_ERRORS and param is not None and hasattr(param, "min"):
        from rag.cli.checks import interval

        exc.message = f"{errors[0].get('input')} is not a number in {interval(param.min, param.max)}"
    else:
        exc.message = _plain(str(exc.message))


def _register() -> None:
    for name in COMMAND_MODULES:
        importlib.import_module(name)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``rag`` console script; returns the process exit code."""
    # Never reach a model hub: everything loads from local paths or the local HF cache.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    _register()
    argv = optional_value(list(sys.argv[1:] if argv is None else argv), "--ray", RAY_LOCAL)
    try:
        rc = app(args=argv, prog_name="rag", standalone_mode=False)
    except RagError as exc:
        click.echo(f"rag: error: {_plain(str(exc))}", err=True)
        return 1
    except _ABORTS as exc:
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, EOFError):  # click turns *any* EOFError into Abort; no command prompts for input
            click.echo(f"rag: error: a file ended before its data did ({cause}): it is empty or truncated; "
                       "rebuild or replace it", err=True)
            return 1
        click.echo("rag: aborted", err=True)
        return 130
    except _USAGE_ERRORS as exc:  # bad option values, missing arguments: click's one-line usage error
        _reword(exc)
        if hasattr(exc, "show"):
            exc.show()
        else:
            click.echo(f"rag: error: {exc}", err=True)
        return int(getattr(exc, "exit_code", 2))
    except OSError as exc:  # the file system refused something no library call above reported itself
        click.echo(f"rag: error: {describe_os_error(exc)}", err=True)
        return 1
    except KeyboardInterrupt:
        click.echo("rag: interrupted; nothing was written", err=True)
        return 130
    return rc if isinstance(rc, int) else 0


if __name__ == "__main__":
    sys.exit(main())
