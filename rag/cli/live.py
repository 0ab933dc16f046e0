"""``rag add``, ``rag delete``, ``rag compact``, ``rag check``: change and verify an index in place.

As every command: the result (each summary) goes to stdout; progress bars, notes and warnings go
to stderr, and an error is one line on stderr with exit status 1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rag.cli.apps import app
from rag.cli.choices import CorpusFormat
from rag.cli.options import DeviceOption, resolve_device
from rag.wording import counted

IndexOption = Annotated[Path, typer.Option("--index", "-i", help="Index directory.")]


@app.command("add")
def add_command(
    files: Annotated[list[Path], typer.Argument(help="Corpus files or folders, in any `rag index` format.")],
    index: IndexOption,
    format: Annotated[CorpusFormat, typer.Option(help="Corpus format (auto: from the file's extension and content).")] = "auto",
    id_field: Annotated[str | None, typer.Option(help="Id field of JSONL/CSV records (default: _id, id, docid).")] = None,
    text_field: Annotated[str | None, typer.Option(help="Text field (default: text, contents, body).")] = None,
    title_field: Annotated[str, typer.Option(help="Title field ('' for none).")] = "title",
    skip_bad_lines: Annotated[bool, typer.Option("--skip-bad-lines", help="Skip malformed records instead of stopping.")] = False,
    device: DeviceOption = "auto",
    cache_models: Annotated[bool, typer.Option("--cache-models/--no-cache-models", help="Load the models of the index's "
                                               "caches (rag cache build/lumen) to compute the added passages' states; "
                                               "without them KV states are computed at question time and LUMEN memory is dropped.")] = True,
) -> None:
    """Upsert the documents of FILES into --index: a document with an existing id replaces it whole (one commit per file)."""
    from pydantic import ValidationError

    from indexes.errors import InputError
    from rag.corpus import CorpusSpec
    from rag.live import add_documents

    try:
        spec = CorpusSpec(format=format, id_field=id_field, text_field=text_field, title_field=title_field or None,
                          skip_bad_lines=skip_bad_lines)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise InputError(f"invalid option {err['loc'][-1]}: {err['msg']}") from None
    from indexes.manifest import Manifest
    from rag.encoder import Encoder, EncoderConfig

    manifest = Manifest.read(index)
    dense = manifest.dense
    encoder = dense and Encoder(EncoderConfig.from_dense(dense, index_name=str(index), device=resolve_device(device)))
    fillers: list = []
    if cache_models and manifest.caches:
        from rag.live_caches import load_fillers

        fillers, notes = load_fillers(index, resolve_device(device))
        for line in notes:
            typer.echo(line, err=True)
    for f in files:
        report = add_documents(index, f, spec, encoder=encoder, device=resolve_device(device), progress=True, fillers=fillers)
        typer.echo(report.summary(f"added {f}"))  # the result: stdout
        for line in report.notes:
            typer.echo(line, err=True)


@app.command("delete")
def delete_command(
    ctx: typer.Context,
    ids: Annotated[list[str] | None, typer.Argument(help="Document ids to delete.")] = None,
    index: IndexOption = Path("index"),
    ids_file: Annotated[Path | None, typer.Option("--ids-file", help="File of document ids, one per line.")] = None,
) -> None:
    """Delete documents (all their passages) from --index in one commit."""
    from indexes.errors import InputError
    from rag.live import delete_documents

    if not ids and ids_file is None:
        raise typer.BadParameter("no document ids to delete: give IDS or --ids-file FILE", ctx=ctx, param_hint="'IDS...'")
    wanted = list(ids or [])
    if ids_file is not None:
        try:
            wanted += [line.strip() for line in ids_file.read_text(encoding="utf-8").splitlines() if line.strip()]
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"{ids_file}: cannot read the ids file ({exc})") from None
    if not any(wanted):
        raise InputError(f"{ids_file}: no document ids in the file (one per line)")
    report = delete_documents(index, wanted)
    typer.echo(report.summary(f"deleted from {index}"))
    if report.not_found:
        shown = ", ".join(report.not_found[:5]) + (" ..." if len(report.not_found) > 5 else "")
        typer.echo(f"not in the index: {shown}", err=True)


@app.command("compact")
def compact_command(index: IndexOption = Path("index")) -> None:
    """Merge the segments of --index into one and purge deleted passages (results do not change)."""
    from rag.live import compact_index

    typer.echo(compact_index(index).summary(f"compacted {index}"))


@app.command("check")
def check_command(index: IndexOption = Path("index")) -> None:
    """Verify the checksum of every file of every commit of --index."""
    from indexes.segmented import check_index

    files, commits = check_index(index)
    typer.echo(f"{index}: {counted(files, 'file')} of {counted(commits, 'commit')} verified")
