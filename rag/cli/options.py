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

from rag.encoder import Backend

STDOUT = "-"



def check_device(value: str) -> str:
    """``--device``'s value if it is ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` that torch can use.

    Runs as the option's callback, so a bad device fails while the arguments are parsed, before any
    index or model opens. ``auto`` and ``cpu`` never import torch.

    Raises:
        typer.BadParameter: another value (usage error, exit 2), or CUDA that this torch build or
            machine does not have, or a GPU index past the last GPU.
    """
    import re

    match = re.fullmatch(r"(auto|cpu|cuda)(?::(\d+))?", value)
    if match is None or (match[2] is not None and match[1] != "cuda"):
        raise typer.BadParameter(f"{value!r} is not a device; give auto, cpu, cuda or cuda:N (N = GPU index)")
    if match[1] != "cuda":
        return value
    import torch

    if not torch.cuda.is_available():
        raise typer.BadParameter(f"{value!r}: torch {torch.__version__} sees no CUDA GPU on this machine; "
                                 "use --device cpu (or auto)")
    if match[2] is not None and int(match[2]) >= torch.cuda.device_count():
        raise typer.BadParameter(f"{value!r}: this machine has {torch.cuda.device_count()} CUDA GPU(s), "
                                 f"cuda:0 to cuda:{torch.cuda.device_count() - 1}")
    return value


DeviceOption = Annotated[str, typer.Option(help="Device: auto (cuda when available, else cpu), cpu, cuda or cuda:N.",
                                           callback=check_device)]
# Query encoding of a search over an index: `auto` follows the index's passages (rag.encoder.resolve_backend).
EncoderBackendOption = Annotated[Backend, typer.Option(
    help="Query encoding: auto (the backend of the index's passages on CPU, torch on a GPU), torch, "
         "onnx (ONNX Runtime, same scores to ~1e-6) or onnx-int8 (quantised; docs/benchmarks.md).")]
RerankOption = Annotated[str | None, typer.Option("--rerank", help="Rerank the first stage's top passages with this "
                                                  "cross-encoder (local folder or cached HF id; `rag train reranker`).")]
RerankDepthOption = Annotated[int, typer.Option("--rerank-depth", min=1, max=10000,
                                                help="Passages the cross-encoder reranks per query (--rerank).")]
RerankWeightOption = Annotated[float | None, typer.Option(
    "--rerank-weight", min=0.0, max=1.0, metavar="WEIGHT",
    help="Rank the reranked passages by WEIGHT·CE + (1-WEIGHT)·first stage (each min-max normalised per query; "
         "--rerank). Default: the weight `rag train reranker` chose on its dev split (rerank.json beside the model); "
         "a model without that file, e.g. any sentence-transformers CrossEncoder, runs at 1 (cross-encoder only). "
         "0 keeps the first stage's order. (Not --alpha: that is an interval's significance level.)")]


def load_reranker(model: str | None, depth: int, device: str = "auto", weight: float | None = None,
                  mode: str | None = None):
    """The :class:`rag.rerank.CrossEncoderReranker` of ``--rerank`` (``None`` without one).

    A saved weight tuned for another first stage than ``mode`` is noted on stderr (one line): it
    is used all the same, but it was not chosen for this mode. ``--rerank-weight`` without
    ``--rerank`` never reaches here: :func:`rag.cli.checks.check_rerank_options` refuses it first.
    """
    if model is None:
        return None
    from rag.rerank import CrossEncoderReranker, RerankConfig

    reranker = CrossEncoderReranker.load(RerankConfig(model, depth=depth, weight=weight), device=resolve_device(device))
    if weight is None and mode is not None and reranker.saved_mode not in (None, mode):
        typer.echo(f"note: {model}'s rerank weight {reranker.alpha:g} was tuned on its dev split for --mode "
                   f"{reranker.saved_mode}, not {mode}; pass --rerank-weight to choose one", err=True)
    return reranker

MaxNewTokensOption = Annotated[int, typer.Option("--max-new-tokens", help="Generated tokens at most.", min=1)]
MAX_NEW_TOKENS = 256  # SamplingConfig's default

FilterOption = Annotated[str | None, typer.Option(
    "--filter", help='Metadata filter, a JSON object: {"year": {"$gte": 2010}, "source": {"$in": ["a", "b"]}} '
                     "($eq $in $gt $gte $lt $lte, $and $or; see README).")]

RAY_LOCAL = "local"  # ray.init's address that starts a runtime on this machine
RayOption = Annotated[str | None, typer.Option(
    "--ray", metavar="[ADDRESS]",
    help="Run the encoders as a Ray Data pipeline: alone (or 'local') starts a local runtime (2 CPUs); "
         "'auto' joins this machine's cluster; ray://HOST:10001 a remote head. Needs the scale extra.")]
RayWorkersOption = Annotated[int, typer.Option(help="Encoder actors of the --ray pipeline (one CPU and one model each).", min=1)]


def optional_value(argv: list[str], option: str, implied: str) -> list[str]:
    """``argv`` with ``implied`` after each bare ``option``: last, or followed by another option or an existing path.

    Lets ``--ray`` take an optional value (``--ray`` alone = ``--ray local``), click's rule for
    options with a ``flag_value``, which the CLI framework does not offer. A following token that
    names an existing file or folder is the command's argument (``--ray CORPUS``), never an
    address: Ray addresses are ``local``, ``auto``, ``HOST:PORT`` or ``ray://HOST:PORT``.

    Example:
        >>> optional_value(["index", "c.jsonl", "--ray", "--out", "x"], "--ray", "local")
        ['index', 'c.jsonl', '--ray', 'local', '--out', 'x']
        >>> optional_value(["index", "c.jsonl", "--ray", "auto"], "--ray", "local")
        ['index', 'c.jsonl', '--ray', 'auto']
    """
    out: list[str] = []
    for i, arg in enumerate(argv):
        out.append(arg)
        if arg == option and (i + 1 == len(argv) or argv[i + 1].startswith("-") or Path(argv[i + 1]).exists()):
            out.append(implied)
    return out


def ray_config(address: str | None, workers: int, **fields):
    """The :class:`rag.ray_pipeline.RayConfig` of ``--ray ADDRESS`` (``None``: no Ray)."""
    if address is None:
        return None
    from rag.ray_pipeline import RayConfig

    return RayConfig(address=address, workers=workers, **fields)


def resolve_device(device: str) -> str:
    """``auto`` → ``cuda`` when torch sees a GPU, else ``cpu``; any other value unchanged."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def index_device(device: str) -> str | None:
    """``--device`` as :func:`rag.index.open_index`'s ``device``: ``None`` for ``auto`` (the encoder picks, as torch sees)."""
    return None if device == "auto" else device


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
