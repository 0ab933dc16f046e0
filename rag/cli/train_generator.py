"""``rag train generator``: fine-tune a decoder-only generator with block (or full) attention."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rag.cli.apps import train_app
from rag.cli.checks import number_in
from rag.cli.choices import ModelDType, Positions
from rag.cli.options import DeviceOption, directory_output, resolve_device
from rag.wording import counted


@train_app.command("generator")
def train_generator_command(
    model: Annotated[str, typer.Option("--model", "-m", help="Causal LM with rotary positions: smollm2, a model folder, a .gguf file or a cached HF id.")],
    train: Annotated[Path, typer.Option(help="Training JSONL: {question, passages, answer} per line.")],
    dev: Annotated[Path, typer.Option(help="Dev JSONL, same format; decoded greedily through the inference path.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output directory: checkpoints, final/, history.json, curves.png.",
                                         callback=directory_output)],
    block_attention: Annotated[bool, typer.Option("--block-attention/--full-attention",
                                                  help="Block mask + cached-path positions, or the plain causal baseline.")] = True,
    positions: Annotated[Positions, typer.Option(help="Block positions, as the cache is built.")] = "rerotate",
    see_prefix: Annotated[bool, typer.Option("--see-prefix/--no-see-prefix", help="Blocks attend to the shared prefix.")] = True,
    lora: Annotated[bool, typer.Option("--lora", help="Train LoRA adapters (peft) instead of all weights; adapter/ holds them, final/ is merged.")] = False,
    lora_rank: Annotated[int, typer.Option(min=1, help="LoRA: rank r of the adapters.")] = 16,
    steps: Annotated[int, typer.Option(min=1, help="Optimiser steps.")] = 1000,
    batch_size: Annotated[int, typer.Option(min=1, help="Examples per step.")] = 8,
    lr: Annotated[float, typer.Option(min=0.0, callback=number_in(0, None), help="Peak learning rate (1e-4 suits full fine-tuning; LoRA wants ~1e-3).")] = 1e-4,
    warmup: Annotated[int, typer.Option(min=0, help="Linear warmup steps before the cosine decay.")] = 100,
    max_passage_tokens: Annotated[int, typer.Option(min=1, help="Tokens kept per passage; longer passages are truncated.")] = 512,
    max_answer_tokens: Annotated[int, typer.Option(min=1, help="Tokens kept of the answer (the loss is on these), and the most decoded at evaluation.")] = 32,
    eval_every: Annotated[int, typer.Option(min=1, help="Steps between dev evaluations (EM/F1).")] = 250,
    eval_examples: Annotated[int, typer.Option(min=1, help="Dev examples decoded per evaluation.")] = 100,
    checkpoint_every: Annotated[int, typer.Option(min=0, help="0: only the final model.")] = 0,
    time_limit: Annotated[float | None, typer.Option(help="Stop after this many seconds (and save).", min=0.0, callback=number_in(0, None, low_open=True))] = None,
    seed: Annotated[int, typer.Option(min=0, help="Seed of initialisation, data order and dropout.")] = 0,
    dtype: Annotated[ModelDType, typer.Option(help="Model dtype while training.")] = "float32",
    device: DeviceOption = "auto",
) -> None:
    """Answer-only NLL with the mask and positions of cached inference; warmup + cosine LR, dev EM/F1, seeded."""
    import json

    from eval.qa_metrics import exact_match, f1_score
    from rag.fid.train import plot_curves
    from rag.generation.generator import Generator, GeneratorConfig
    from rag.generation.kv_blocks import BlockLayout
    from rag.generation.prompt import PromptBuilder, PromptTemplate
    from rag.generation.train import GeneratorTrainConfig, load_generator_jsonl, train_generator

    cfg = GeneratorTrainConfig(
        attention="block" if block_attention else "full", layout=BlockLayout(positions=positions, see_prefix=see_prefix),
        steps=steps, batch_size=batch_size, lr=lr, warmup_steps=warmup, max_answer_tokens=max_answer_tokens,
        eval_every=eval_every, eval_examples=eval_examples, checkpoint_every=checkpoint_every, lora=lora, lora_rank=lora_rank,
        seed=seed, time_limit_s=time_limit,
    )
    train_rows, dev_rows = load_generator_jsonl(train), load_generator_jsonl(dev)
    device = resolve_device(device)
    gen = Generator.load(GeneratorConfig(model=model, dtype=dtype, device=device))
    builder = PromptBuilder(gen, PromptTemplate(max_passage_tokens=max_passage_tokens))
    result = train_generator(
        gen, train_rows, dev_rows, cfg, out, score=lambda p, g: (exact_match(p, g), f1_score(p, g)), builder=builder,
        log=lambda row: typer.echo(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}), err=True),
    )
    plot_curves(result.history, out / "curves.png", title=f"generator training ({cfg.attention} attention)")
    last = [r for r in result.history if "em" in r][-1]
    where = f"{out / 'final'} (LoRA adapter: {out / 'adapter'})" if lora else str(out / "final")
    typer.echo(f"{counted(result.steps, 'step')} in {result.seconds:.0f} s; dev EM {100 * last['em']:.1f} F1 {100 * last['f1']:.1f}; model in {where}")
