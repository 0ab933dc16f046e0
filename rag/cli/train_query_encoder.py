"""``rag train query-encoder``: a smaller query encoder distilled from an index's encoder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rag.cli.apps import train_app
from rag.cli.checks import number_in
from rag.cli.options import DeviceOption, directory_output, resolve_device
from rag.wording import counted


@train_app.command("query-encoder")
def train_query_encoder_command(
    index: Annotated[Path, typer.Option("--index", "-i", help="Dense index: its encoder is the teacher, its passages the training text.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Model directory to write (rag search/serve --query-encoder).",
                                         callback=directory_output)],
    layers: Annotated[int, typer.Option(help="Transformer layers the student keeps (fewer: faster queries).", min=1)] = 3,
    epochs: Annotated[float, typer.Option(help="Passes over the training sentences.", min=0.01, callback=number_in(0.01, None))] = 1.0,
    batch_size: Annotated[int, typer.Option(help="Sentences per step.", min=1)] = 64,
    lr: Annotated[float, typer.Option(help="Peak learning rate.", min=0, callback=number_in(0, None))] = 1e-4,
    max_texts: Annotated[int | None, typer.Option(help="Train on a random subset of at most this many sentences.", min=1)] = None,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the subset, data order and dropout.")] = 0,
    device: DeviceOption = "auto",
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bars.")] = False,
) -> None:
    """Distil the index's encoder into a LAYERS-layer query encoder for its passage vectors (MSE on the
    passages' own sentences); the index is not re-encoded. Writes OUT with query_encoder.json."""
    from rag.training.distill import DistillConfig, distill_query_encoder

    config = DistillConfig(layers=layers, epochs=epochs, batch_size=batch_size, learning_rate=lr,
                           max_texts=max_texts, seed=seed)
    device = resolve_device(device)
    r = distill_query_encoder(index, out, config, device=device, progress=not quiet)
    typer.echo(f"wrote {out}: {counted(r.texts, 'sentence')}, {r.seconds / 60:.1f} min; held-out MSE {r.mse_before:.2e} → "
               f"{r.mse_after:.2e}, cosine to the teacher {r.cosine_after:.4f}")
