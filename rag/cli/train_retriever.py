"""``rag train retriever``: contrastive fine-tuning of the dense encoder (supervised or unsupervised)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rag.cli.apps import train_app
from rag.cli.checks import number_in
from rag.cli.choices import NegativeSource
from rag.cli.options import DeviceOption, directory_output, resolve_device


@train_app.command("retriever")
def train_retriever_command(
    out: Annotated[Path, typer.Option("--out", "-o", help="Model directory to write (usable as rag index --encoder).",
                                         callback=directory_output)],
    corpus: Annotated[Path | None, typer.Option(help="Corpus (BEIR corpus.jsonl or any rag index format).")] = None,
    queries: Annotated[Path | None, typer.Option(help="Queries JSONL (_id, text); metadata is never read.")] = None,
    qrels: Annotated[Path | None, typer.Option(help="Training qrels (BEIR TSV or TREC).")] = None,
    pairs: Annotated[Path | None, typer.Option(help="JSONL of {query, positive[, negative(s)]} instead of queries+qrels.")] = None,
    unsupervised: Annotated[bool, typer.Option("--unsupervised", help="Contriever-style: crops of --corpus documents.")] = False,
    base: Annotated[str, typer.Option(help="Encoder to start from: embedded name, local path or cached HF id.")] = "embedded:all-MiniLM-L6-v2",
    index: Annotated[Path | None, typer.Option(help="Index of --corpus to mine negatives from (default: a temporary BM25 one).")] = None,
    negatives: Annotated[int, typer.Option(help="Hard negatives per pair (0: in-batch only).", min=0)] = 1,
    negative_source: Annotated[NegativeSource, typer.Option(help="Mine with bm25 or dense (the --index's encoder).")] = "bm25",
    negative_depth: Annotated[int, typer.Option(help="Candidates looked at per query.", min=1)] = 30,
    negative_margin: Annotated[float, typer.Option(help="Skip candidates scoring above (1 - margin) x the positive's score.", min=0.0, max=1.0, callback=number_in(0, 1))] = 0.05,
    dev_fraction: Annotated[float, typer.Option(help="Share of queries held out for dev nDCG@10 and best-checkpoint selection, in [0, 1).", min=0.0, max=1.0, callback=number_in(0, 1, high_open=True))] = 0.1,
    epochs: Annotated[float, typer.Option(help="Passes over the training pairs (> 0).", min=0.0, callback=number_in(0, None, low_open=True))] = 2,
    batch_size: Annotated[int, typer.Option(help="Pairs per step (in-batch negatives).", min=1)] = 32,
    cache_batch: Annotated[int | None, typer.Option(help="GradCache mini-batch: any --batch-size in this much memory.", min=1)] = None,
    lr: Annotated[float, typer.Option(help="Peak learning rate.", min=0.0, callback=number_in(0, None))] = 5e-5,
    warmup_ratio: Annotated[float, typer.Option(help="Fraction of steps with a rising learning rate.", min=0.0, max=1.0, callback=number_in(0, 1))] = 0.1,
    temperature: Annotated[float, typer.Option(help="InfoNCE temperature tau (scale = 1/tau; > 0).", min=0.0, callback=number_in(0, None, low_open=True))] = 0.05,
    symmetric: Annotated[bool, typer.Option("--symmetric", help="Also train passage-to-query.")] = False,
    max_seq_length: Annotated[int, typer.Option(help="Tokens per text while training (the model keeps its own for indexing).", min=1)] = 128,
    seed: Annotated[int, typer.Option(min=0, help="Seed of data order, mining, crops and dropout.")] = 13,
    eval_steps: Annotated[int | None, typer.Option(help="Evaluate/checkpoint every N steps (default: every epoch).", min=1)] = None,
    logging_steps: Annotated[int, typer.Option(help="Steps between loss log lines (training.json keeps the curve).", min=1)] = 5,
    checkpoints: Annotated[Path | None, typer.Option(help="Checkpoint directory (default: OUT.checkpoints).")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from the last checkpoint.")] = False,
    crop_min: Annotated[float, typer.Option(help="Unsupervised: shortest crop, as a fraction of the document, in (0, 1].", min=0.0, max=1.0, callback=number_in(0, 1, low_open=True))] = 0.1,
    crop_max: Annotated[float, typer.Option(help="Unsupervised: longest crop, in [--crop-min, 1].", min=0.0, max=1.0, callback=number_in(0, 1, low_open=True))] = 0.5,
    deletion: Annotated[float, typer.Option(help="Unsupervised: probability of deleting each word of a crop, in [0, 1).", min=0.0, max=1.0, callback=number_in(0, 1, high_open=True))] = 0.1,
    max_documents: Annotated[int | None, typer.Option(help="Unsupervised: train on a random subset of documents.", min=1)] = None,
    device: DeviceOption = "auto",
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bars.")] = False,
) -> None:
    """Fine-tune a bi-encoder with InfoNCE; writes OUT with training.json beside the weights."""
    from indexes.errors import InputError

    # Argument combinations first: a wrong call fails before torch is imported.
    if crop_max < crop_min:
        raise typer.BadParameter(f"{crop_max:g} is below --crop-min {crop_min:g}", param_hint="'--crop-max'")
    if unsupervised and (queries or qrels or pairs):
        raise InputError("--unsupervised trains on --corpus alone; drop --queries/--qrels/--pairs")
    if pairs is not None and (queries or qrels):
        raise InputError("give either --pairs or --queries with --qrels, not both")
    if (unsupervised or pairs is None) and corpus is None:
        raise InputError("--corpus is required (except with --pairs)")
    if not unsupervised and pairs is None and (queries is None or qrels is None):
        raise InputError("supervised training needs --queries and --qrels (or --pairs); or pass --unsupervised")

    from rag.training.cropping import CropConfig
    from rag.training.data import load_documents
    from rag.training.negatives import NegativeConfig
    from rag.training.recipes import train_supervised, train_unsupervised
    from rag.training.trainer import TrainConfig

    config = TrainConfig(base_model=base, epochs=epochs, batch_size=batch_size, learning_rate=lr,
                         warmup_ratio=warmup_ratio, temperature=temperature, symmetric=symmetric,
                         mini_batch_size=cache_batch, max_seq_length=max_seq_length, seed=seed,
                         eval_steps=eval_steps, logging_steps=logging_steps, progress=not quiet)
    device = resolve_device(device)
    common = dict(config=config, checkpoints=checkpoints, resume=resume, device=device)
    documents = load_documents(corpus) if corpus is not None else {}
    if unsupervised:
        result = train_unsupervised(documents, out, crop=CropConfig(crop_min, crop_max, deletion),
                                    max_documents=max_documents, **common)
    else:
        train_pairs, metric = _supervised_pairs(queries, qrels, pairs, documents)
        result = train_supervised(train_pairs, documents, out, corpus=corpus, metric=metric, index=index,
                                  dev_fraction=dev_fraction if metric else 0.0,
                                  negatives=NegativeConfig(0 if pairs else negatives, negative_depth,
                                                           negative_margin, negative_source, seed),
                                  **common)
    dev = f", best dev nDCG@10 {result.best_dev_ndcg10:.4f}" if result.best_dev_ndcg10 is not None else ""
    typer.echo(f"trained {out} in {result.seconds / 60:.1f} min{dev}")  # the summary: stdout (README)


def _supervised_pairs(queries, qrels, pairs, documents):
    """(pairs, dev metric): BEIR pairs with the project's nDCG@10, or JSONL pairs without a dev split."""
    from eval.retrieval import evaluate
    from rag.queries import load_qrels, load_queries
    from rag.training.data import beir_pairs, read_jsonl_pairs

    if pairs is not None:  # a pairs/triples file brings its own negatives; no dev split
        return read_jsonl_pairs(pairs), None
    judged, texts = load_qrels(qrels), load_queries(queries)
    return beir_pairs(texts, judged, documents, qrels_name=str(qrels)), lambda run, q: evaluate(run, q, ("ndcg@10",))[0]["ndcg@10"]
