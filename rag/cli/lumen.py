"""``rag cache lumen``: precompute LUMEN passage memory of a T5-family reader into an index."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rag.cli.apps import cache_app
from rag.cli.options import DeviceOption, resolve_device
from rag.wording import counted


@cache_app.command("lumen")
def cache_lumen_command(
    generator: Annotated[str, typer.Option("--generator", "-g", help="T5-family reader: model folder or cached HF id (weights + tokenizer).")],
    live_layers: Annotated[int, typer.Option("--live-layers", "-K", min=1, help="Encoder layers run at question time; the others become memory.")],
    index: Annotated[Path, typer.Option("--index", "-i", help="Index directory.")] = Path("index"),
    max_passage_tokens: Annotated[int, typer.Option(min=2, help="Passage truncation; must match the reader's at question time.")] = 200,
    batch_size: Annotated[int, typer.Option(min=1, help="Passages encoded together.")] = 32,
    device: DeviceOption = "auto",
) -> None:
    """Run every passage of INDEX through the first N−K encoder layers and store it (fp16, safetensors)."""
    from indexes.lumen_store import LumenStore
    from rag.fid.lumen import LumenEncoder
    from rag.fid.memory import build_lumen_memory
    from rag.fid.reader import FiDConfig, FiDReader

    device = resolve_device(device)
    reader = FiDReader.from_pretrained(generator, FiDConfig(max_passage_tokens=max_passage_tokens), device=device)
    encoder = LumenEncoder(reader.model, live_layers)
    info = build_lumen_memory(index, reader, encoder, model_id=generator, batch_size=batch_size)
    per = LumenStore(index, info).bytes_per_passage()
    typer.echo(f"LUMEN memory {info.path}: {counted(info.passages, 'passage')}, {counted(encoder.memory_layers, 'memory layer')}, {per / 1024:.1f} KiB/passage")
