"""``rag train reranker``: a cross-encoder trained on judged queries, hard negatives from an index."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rag.cli.apps import train_app
from rag.cli.checks import number_in
from rag.cli.choices import RerankerLoss, SearchMode
from rag.cli.options import DeviceOption, directory_output, index_device, resolve_device
from rag.wording import counted


def _on_command_line(ctx: typer.Context, name: str) -> bool:
    """Whether option ``name`` was given on the command line (not its default)."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name == "COMMANDLINE"  # by name: typer may carry its own click


@train_app.command("reranker")
def train_reranker_command(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", "-o", help="Model directory to write (usable as --rerank OUT).",
                                         callback=directory_output)],
    index: Annotated[Path, typer.Option("--index", "-i", help="Index of --corpus: its first stage supplies the hard negatives and dev candidates.")],
    corpus: Annotated[Path, typer.Option(help="Corpus the qrels judge (BEIR corpus.jsonl or any rag index format).")],
    queries: Annotated[Path, typer.Option(help="Queries JSONL (_id, text) or TSV.")],
    qrels: Annotated[Path, typer.Option(help="TRAINING qrels (BEIR TSV or TREC); dev queries are held out of these.")],
    base: Annotated[str, typer.Option(help="Encoder to start from: embedded name, local path or cached HF id.")] = "embedded:all-MiniLM-L6-v2",
    mode: Annotated[SearchMode, typer.Option("--mode", "-m", help="First stage mined and reranked on dev.")] = "hybrid",
    loss: Annotated[RerankerLoss, typer.Option(help="bce (pointwise) or lce (softmax over one positive and its --negatives; Gao et al. 2021).")] = "bce",
    negatives: Annotated[int, typer.Option(help="Hard negatives per query (bce) or per positive (lce).", min=1)] = 4,
    negative_depth: Annotated[int, typer.Option(help="First-stage documents they are drawn from (minus positives).", min=2)] = 30,
    dev_fraction: Annotated[float, typer.Option(help="Share of the training queries held out for checkpoint selection, in (0, 1).", min=0.0, max=1.0, callback=number_in(0, 1, low_open=True, high_open=True))] = 0.1,
    dev_depth: Annotated[int, typer.Option(help="First-stage documents reranked per dev query.", min=1)] = 20,
    epochs: Annotated[float, typer.Option(help="Passes over the training rows (fractions allowed; > 0).", min=0.0, callback=number_in(0, None, low_open=True))] = 1.0,
    batch_size: Annotated[int, typer.Option(help="Rows per step.", min=1)] = 16,
    lr: Annotated[float, typer.Option(help="Peak learning rate.", min=0.0, callback=number_in(0, None))] = 7e-5,
    warmup_ratio: Annotated[float, typer.Option(help="Fraction of steps with a rising learning rate.", min=0.0, max=1.0, callback=number_in(0, 1))] = 0.1,
    max_length: Annotated[int, typer.Option(help="Tokens per (query, passage) pair, in training and in the saved model.", min=16)] = 256,
    eval_steps: Annotated[int | None, typer.Option(help="Evaluate/checkpoint every N steps (default: every epoch).", min=1)] = None,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the head, dev split, negatives, data order and dropout.")] = 13,
    device: DeviceOption = "auto",
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bars and no logged metrics (training.json keeps the curves).")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace a reranker trained earlier in OUT (else refused).")] = False,
    keep_checkpoints: Annotated[bool, typer.Option(
        "--keep-checkpoints", help="Keep the trainer's checkpoints in OUT.checkpoints beside OUT (by default that folder, "
                                   "hundreds of MB, is deleted once the best checkpoint is saved as OUT).")] = False,
    select_weight_only: Annotated[bool, typer.Option(
        "--select-weight-only", help="Do not train: choose the rerank weight (--rerank-weight) of the trained reranker in "
                                     "OUT on the dev split, --mode and --dev-depth its training.json records (given "
                                     "options that differ are refused) and write OUT/rerank.json.")] = False,
) -> None:
    """Train a cross-encoder reranker; writes OUT with training.json beside the weights, and
    rerank.json with the weight of its score against the first stage's (--rerank-weight), chosen on
    the dev split for --mode and --dev-depth. Prints a summary line on stdout; progress on stderr."""
    from indexes.errors import InputError

    from rag.index import open_index
    from rag.models import resolve_model
    from rag.queries import load_qrels, load_queries
    from rag.training.data import beir_pairs, load_documents
    from rag.training.reranker import RerankerTrainConfig, select_weight_only as select_only, train_reranker

    config = RerankerTrainConfig(base_model=base, epochs=epochs, batch_size=batch_size, learning_rate=lr,
                                 warmup_ratio=warmup_ratio, loss=loss, negatives=negatives, negative_depth=negative_depth, mode=mode,
                                 max_length=max_length, dev_fraction=dev_fraction, dev_depth=dev_depth,
                                 eval_steps=eval_steps, seed=seed, progress=not quiet)
    documents = load_documents(corpus)
    pairs = beir_pairs(load_queries(queries), load_qrels(qrels), documents, qrels_name=str(qrels))
    if select_weight_only and not (out / "config.json").is_file():
        raise InputError(f"--select-weight-only: {out} holds no trained reranker; train one there first")
    if not select_weight_only:
        resolve_model(base, "base model")  # a missing base model fails before the index is searched
    given = {name: value for name, value in (("mode", mode), ("dev_depth", dev_depth), ("dev_fraction", dev_fraction),
                                              ("seed", seed)) if _on_command_line(ctx, name)}
    idx = open_index(index, device=index_device(device))
    try:
        if (not select_weight_only or "mode" in given) and mode not in idx.modes():
            raise InputError(f"--index {index} supports {', '.join(idx.modes())}, not --mode {mode}")
        if select_weight_only:
            chosen = select_only(out, pairs, documents, idx, given=given, device=resolve_device(device))
            typer.echo(f"wrote {out / 'rerank.json'}: rerank weight {chosen['weight']:.2f} for --mode {chosen['mode']} "
                       f"(dev nDCG@10 {chosen['dev_ndcg@10']:.4f}; first stage {chosen['dev_ndcg@10_first_stage']:.4f}, "
                       f"cross-encoder {chosen['dev_ndcg@10_cross_encoder']:.4f}; {chosen['dev_queries']} dev queries, "
                       f"depth {chosen['dev_depth']})")
            return
        record = {"index": str(index), "corpus": str(corpus), "queries": str(queries), "qrels": str(qrels)}
        result = train_reranker(pairs, documents, idx, out, config, device=resolve_device(device), extra_record=record,
                                overwrite=overwrite, keep_checkpoints=keep_checkpoints)
    finally:
        idx.close()
    typer.echo(f"trained {out} in {result.seconds / 60:.1f} min ({counted(result.steps, 'step')}), best dev nDCG@10 "
               f"{result.best_dev:.4f}; rerank weight {result.rerank_weight:.2f} for --mode {mode} (rerank.json)")
