"""Options shared by several commands: the device, and output paths where ``-`` means stdout.

Every command that loads a model takes ``--device`` with one default, ``auto`` (CUDA when
available, else CPU), resolved here so that the libraries always get a concrete device. Every
option that names an output *file* accepts ``-`` for standard output (the command's messages go
to stderr); an option that names an output *directory* refuses ``-`` instead of creating a folder
called ``-``.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

STDOUT = "-"

DeviceOption = Annotated[str, typer.Option(help="Device: auto (cuda when available, else cpu), cpu, cuda or cuda:N.")]
RerankOption = Annotated[str | None, typer.Option("--rerank", help="Rerank the first stage's top passages with this "
                                                  "cross-encoder (local folder or cached HF id; `rag train reranker`).")]
RerankDepthOption = Annotated[int, typer.Option("--rerank-depth", min=1, max=10000,
                                                help="Passages the cross-encoder reranks per query (--rerank).")]


def load_reranker(model: str | None, depth: int, device: str = "auto"):
    """The :class:`rag.rerank.CrossEncoderReranker` of ``--rerank`` (``None`` without one)."""
    if model is None:
        return None
    from rag.rerank import CrossEncoderReranker, RerankConfig

    return CrossEncoderReranker.load(RerankConfig(model, depth=depth), device=resolve_device(device))


def resolve_device(device: str) -> str:
    """``auto`` → ``cuda`` when torch sees a GPU, else ``cpu``; any other value unchanged."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def is_stdout(path: Path | str | None) -> bool:
    return path is not None and str(path) == STDOUT


@contextlib.contextmanager
def output_file(path: Path) -> Iterator[Path]:
    """The path a writer should write to: ``path`` itself, or for ``-`` a temporary file copied to stdout.

    Example:
        >>> with output_file(Path("-")) as p:   # doctest: +SKIP
        ...     write_trec_run(p, run)
    """
    if not is_stdout(path):
        yield path
        return
    fd, tmp = tempfile.mkstemp(prefix="rag-stdout-")
    os.close(fd)
    try:
        yield Path(tmp)
        sys.stdout.write(Path(tmp).read_text(encoding="utf-8"))  # output files are UTF-8 text
        sys.stdout.flush()
    finally:
        os.unlink(tmp)


def directory_output(ctx: typer.Context, param: typer.CallbackParam, value: Path | None) -> Path | None:
    """Option callback for output directories: ``-`` is refused (it would create a folder named ``-``)."""
    if is_stdout(value):
        raise typer.BadParameter(f"{param.opts[0]} names a directory; '-' (stdout) only works for output files")
    return value
