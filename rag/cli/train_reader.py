"""``rag train reader``: train a Fusion-in-Decoder (or LUMEN) reader on QA JSONL."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rag.cli.apps import train_app
from rag.cli.checks import number_in
from rag.cli.choices import SearchMode
from rag.cli.options import DeviceOption, directory_output, index_device, resolve_device
from rag.wording import counted


@train_app.command("reader")
def train_reader_command(
    model: Annotated[Path, typer.Option("--model", "-m", help="T5-family model directory (weights + tokenizer) to start from.")],
    train: Annotated[Path, typer.Option(help="Training JSONL: {question, answers, passages} per line (passages optional with --index).")],
    dev: Annotated[Path, typer.Option(help="Dev JSONL, same format; decoded for EM/F1 at each evaluation.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output directory: checkpoints, final/, history.json, curves.png.",
                                         callback=directory_output)],
    steps: Annotated[int, typer.Option(min=1, help="Optimiser steps.")] = 2000,
    batch_size: Annotated[int, typer.Option(min=1, help="Questions per step (each with --n-passages passages).")] = 16,
    lr: Annotated[float, typer.Option(min=0.0, callback=number_in(0, None), help="Peak learning rate (1e-3 suits small models trained from scratch; fine-tuning a pretrained T5 wants ~1e-4).")] = 1e-3,
    warmup: Annotated[int, typer.Option(min=0, help="Linear warmup steps before the cosine decay.")] = 200,
    n_passages: Annotated[int, typer.Option(min=1, help="Passages read per question (FiD's N).")] = 10,
    max_passage_tokens: Annotated[int, typer.Option(min=2, help="Tokens kept per passage; longer passages are truncated.")] = 200,
    max_question_tokens: Annotated[int, typer.Option(min=1, help="Tokens kept of the question.")] = 40,
    live_layers: Annotated[int | None, typer.Option(min=1, help="LUMEN: live encoder layers K; the others are frozen.")] = None,
    eval_every: Annotated[int, typer.Option(min=1, help="Steps between dev evaluations (EM/F1).")] = 250,
    eval_examples: Annotated[int, typer.Option(min=1, help="Dev examples decoded per evaluation.")] = 200,
    checkpoint_every: Annotated[int, typer.Option(min=0, help="0: only the final checkpoint.")] = 0,
    time_limit: Annotated[float | None, typer.Option(help="Stop after this many seconds (and save).", min=0.0, callback=number_in(0, None, low_open=True))] = None,
    index: Annotated[Path | None, typer.Option("--index", "-i", help="Retrieve passages for questions that have none from this index.")] = None,
    k: Annotated[int | None, typer.Option("-k", min=1, help="Passages retrieved per question (default: --n-passages).")] = None,
    mode: Annotated[SearchMode, typer.Option("--mode", help="Retrieval mode for --index.")] = "hybrid",
    seed: Annotated[int, typer.Option(min=0, help="Seed of initialisation, data order and dropout.")] = 0,
    device: DeviceOption = "auto",
) -> None:
    """Teacher-forced FiD training with warmup + cosine LR, dev EM/F1 and checkpoints (seeded)."""
    import json

    from eval.qa_metrics import exact_match, f1_score
    from rag.fid.reader import FiDConfig, FiDReader
    from rag.fid.train import ReaderTrainConfig, load_qa_jsonl, plot_curves, retrieve_passages, train_reader

    reader_cfg = FiDConfig(n_passages=n_passages, max_question_tokens=max_question_tokens, max_passage_tokens=max_passage_tokens)
    train_cfg = ReaderTrainConfig(
        steps=steps, batch_size=batch_size, lr=lr, warmup_steps=warmup, eval_every=eval_every, eval_examples=eval_examples,
        checkpoint_every=checkpoint_every, live_layers=live_layers, seed=seed, time_limit_s=time_limit,
    )
    train_rows, dev_rows = load_qa_jsonl(train, need_passages=index is None), load_qa_jsonl(dev, need_passages=index is None)
    if index is not None:
        from rag.index import open_index

        retriever = open_index(index, device=index_device(device)).retriever(mode)  # type: ignore[arg-type]  (checked by retriever())
        train_rows, dev_rows = (retrieve_passages(rows, retriever, k or n_passages) for rows in (train_rows, dev_rows))
    device = resolve_device(device)
    reader = FiDReader.from_pretrained(model, reader_cfg, device=device)
    result = train_reader(
        reader, train_rows, dev_rows, train_cfg, out, score=lambda p, g: (exact_match(p, g), f1_score(p, g)),
        log=lambda row: typer.echo(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}), err=True),
    )
    title = f"LUMEN reader training (K={live_layers} live)" if live_layers else "FiD reader training"
    plot_curves(result.history, out / "curves.png", title=title)
    last = [r for r in result.history if "em" in r][-1]
    typer.echo(f"{counted(result.steps, 'step')} in {result.seconds:.0f} s; dev EM {100 * last['em']:.1f} F1 {100 * last['f1']:.1f}; model in {out / 'final'}")
