"""``rag eval ppi``, ``rag eval label`` and ``rag eval qa``: QA accuracy with prediction-powered inference."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from eval.qa_choices import Correctness, JudgeName, Method
from rag.cli.apps import eval_app
from rag.cli.checks import number_in
from rag.cli.choices import SearchMode
from rag.cli.options import MAX_NEW_TOKENS, MaxNewTokensOption, directory_output, output_file
from rag.cli.path_options import (FUSION, FUSION_TEMPERATURE, POSITIONS, RAG_SEQUENCE_DECODING, EvictOption, FusionOption,
                                  FusionTemperatureOption, KVBudgetOption, KVCacheOption, PositionsOption,
                                  RagSequenceDecodingOption, SelectBlocksOption, ask_fields, path_config)
from rag.extractive import ExtractiveConfig
from rag.wording import counted


@eval_app.command("ppi")
def eval_ppi_command(
    labels: Annotated[Path, typer.Option(help="Human labels: JSONL or CSV rows {id, label} for a subset of items.")],
    judge: Annotated[Path, typer.Option(help="Judge scores: JSONL or CSV rows {id, score} for every item.")],
    method: Annotated[Method | None, typer.Option(help="One estimator (default: all of them).")] = None,
    alpha: Annotated[float, typer.Option(help="Error level in (0, 1): intervals target coverage 1 - alpha.", min=0.0, max=1.0, callback=number_in(0, 1, low_open=True, high_open=True))] = 0.1,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object keyed by method.")] = False,
) -> None:
    """Estimate mean accuracy from a few human labels and many judge scores (PPI, PPI++, Bayesian PPI)."""
    from eval.estimators import BINARY_METHODS, effective_labels, estimate_all
    from eval.labels import load_aligned

    methods = (method,) if method else tuple(Method)
    data = load_aligned(labels, judge, binary=any(m in BINARY_METHODS for m in methods) and method is not None)
    if method is None and not set(data.Y.tolist()) <= {0.0, 1.0}:
        typer.echo(f"rag: note: {labels} has labels other than 0/1; skipping the Bayesian estimators", err=True)
        methods = tuple(m for m in methods if m not in BINARY_METHODS)
    results = estimate_all(data.Y, data.Yhat, data.Yhat_unlabeled, alpha, methods)
    if as_json:
        typer.echo(json.dumps({m.value: est.to_dict() for m, est in results.items()}))
        return
    classical = results.get(Method.CLASSICAL)
    typer.echo(f"n = {data.Y.shape[0]} human labels, N = {data.Yhat_unlabeled.shape[0]} judge-only items, "
               f"{1 - alpha:.0%} intervals")
    typer.echo(f"  {'method':<12} {'estimate':>9} {'lower':>9} {'upper':>9} {'width':>8} {'eff. labels':>12}")
    for m, est in results.items():
        eff = effective_labels(est, classical) if classical else None
        n_eff = f"{eff:12.0f}" if eff is not None else f"{'–' if classical else '':>12}"
        typer.echo(f"  {m.value:<12} {est.estimate:9.4f} {est.lower:9.4f} {est.upper:9.4f} {est.width:8.4f} {n_eff}")


@eval_app.command("label")
def eval_label_command(
    dataset: Annotated[Path, typer.Option(help="QA set: SQuAD JSON or JSONL {id, question, answers}.")],
    out: Annotated[Path, typer.Option(help="CSV template to write (id, question, answer, label); - for stdout.")],
    size: Annotated[int, typer.Option(help="How many items to sample for labelling.", min=1)] = 300,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the random sample.")] = 0,
    predictions: Annotated[Path | None, typer.Option(help="Predictions JSONL, to show each answer to the labeller.")] = None,
) -> None:
    """Draw a seeded random sample of items and write a CSV template whose 'label' column a person fills with 0/1."""
    from eval.labels import sample_for_labelling, write_label_template
    from eval.qa_data import load_predictions, load_qa

    items = {item.id: item for item in load_qa(dataset)}
    preds = load_predictions(predictions) if predictions else {}
    chosen = sample_for_labelling(list(items), size, seed)
    rows = [{"id": i, "question": items[i].question, "answer": preds[i].answer if i in preds else ""} for i in chosen]
    with output_file(out) as path:
        write_label_template(path, rows, ["id", "question", "answer"])
    # `rag eval qa` is what produces judge scores for these items; `rag eval ppi` needs its judge.jsonl
    source = f"--predictions {predictions}" if predictions else "--index INDEX (or --predictions PREDICTIONS.jsonl)"
    typer.echo(f"wrote {counted(len(rows), 'item')} to {'stdout' if str(out) == '-' else out}; fill the 'label' column with 1 "
               f"(correct) or 0, then run `rag eval qa --dataset {dataset} {source} --labels "
               f"{'LABELS.csv' if str(out) == '-' else out} --report REPORT_DIR` (it judges every item, writes "
               "REPORT_DIR/judge.jsonl for `rag eval ppi`, and estimates accuracy from your labels)", err=True)


@eval_app.command("qa")
def eval_qa_command(
    dataset: Annotated[Path, typer.Option(help="QA set: SQuAD JSON or JSONL {id, question, answers}.")],
    report: Annotated[Path, typer.Option(help="Output directory for report.md, report.html, report.json.",
                                         callback=directory_output)],
    predictions: Annotated[Path | None, typer.Option(help="Predictions JSONL, one {id, answer} per line (optional: "
                                                          "passages, latency_ms, kind), e.g. the --out of `rag ask "
                                                          "--questions`; instead of running the pipeline.")] = None,
    index: Annotated[Path | None, typer.Option("--index", "-i", help="Index to answer from with the pipeline.")] = None,
    generator: Annotated[str | None, typer.Option("--generator", "-g", help="Causal LM for generated answers and "
                                                  "the llm judge; omit for extractive answers.")] = None,
    mode: Annotated[SearchMode, typer.Option("--mode", "-m", help="Retrieval mode.")] = "hybrid",
    k: Annotated[int, typer.Option("-k", help="Passages retrieved; answer recall is measured at k.", min=1)] = 5,
    sentences: Annotated[int, typer.Option(help="Extractive answers: sentences quoted (as `rag ask`).",
                                           min=1)] = ExtractiveConfig.sentences,
    min_score: Annotated[float, typer.Option(help="Extractive answers: least cosine of the best sentence, below "
                                             "which the answer is 'no answer found' (as `rag ask`).",
                                             min=-1.0, max=1.0)] = ExtractiveConfig.min_score,
    kv_cache: KVCacheOption = False,
    positions: PositionsOption = POSITIONS,
    fusion: FusionOption = FUSION,
    fusion_temperature: FusionTemperatureOption = FUSION_TEMPERATURE,
    rag_sequence_decoding: RagSequenceDecodingOption = RAG_SEQUENCE_DECODING,
    select_blocks: SelectBlocksOption = None,
    evict: EvictOption = None,
    kv_budget: KVBudgetOption = None,
    max_new_tokens: MaxNewTokensOption = MAX_NEW_TOKENS,
    labels: Annotated[Path | None, typer.Option(help="Human labels {id, label}; default: gold-derived "
                                                "correctness of a random subset (--gold-labels).")] = None,
    gold_labels: Annotated[int, typer.Option(help="Size of the gold-derived 'human' subset.", min=2)] = 300,
    judge: Annotated[JudgeName, typer.Option(help="embedding (reference-free: answer vs question), embedding-gold, "
                                             "f1 (reads gold), or llm (needs --generator).")] = JudgeName.EMBEDDING,
    correct: Annotated[Correctness, typer.Option(help="Gold-derived correctness: contains (a SQuAD-normalised gold "
                                                 "answer occurs in the answer; for sentence answers), f1 (token F1 "
                                                 ">= 0.5; for short answers), or auto: contains for extractive "
                                                 "answers, f1 for generated ones.")] = Correctness.AUTO,
    limit: Annotated[int | None, typer.Option(help="Evaluate only the first N questions.", min=1)] = None,
    alpha: Annotated[float, typer.Option(help="Error level in (0, 1): intervals target coverage 1 - alpha.", min=0.0, max=1.0, callback=number_in(0, 1, low_open=True, high_open=True))] = 0.1,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the label subset and subsampling.")] = 0,
) -> None:
    """Evaluate QA answers (from --predictions, or the pipeline over --index) and write a PPI report."""
    from rag.pipeline import AskConfig
    from eval.qa_run import QARunConfig, run_qa_eval

    if predictions is not None and (kv_cache or fusion != FUSION or select_blocks is not None or evict is not None):
        from indexes.errors import InputError  # checked first: the generator checks below would ask for -g

        raise InputError("--kv-cache, --fusion, --select-blocks and --evict shape the pipeline's answers: they go with "
                         "--index, not with --predictions (answers already computed)")
    path = path_config(generator, kv_cache=kv_cache, positions=positions, fusion=fusion, fusion_temperature=fusion_temperature,
                       rag_sequence_decoding=rag_sequence_decoding, select_blocks=select_blocks, evict=evict,
                       kv_budget=kv_budget)
    from rag.generation.sampling import SamplingConfig

    ask = AskConfig(k=k, mode=mode, extractive=ExtractiveConfig(sentences=sentences, min_score=min_score),
                    sampling=SamplingConfig(max_new_tokens=max_new_tokens), **ask_fields(path))
    config = QARunConfig(dataset=dataset, report=report, predictions=predictions, index=index, generator=generator,
                         ask=ask, labels=labels, gold_labels=gold_labels, judge=judge, correct=correct, limit=limit,
                         alpha=alpha, seed=seed)
    paths = run_qa_eval(config, note=lambda m: typer.echo(f"rag: note: {m}", err=True))
    typer.echo(f"wrote {paths['md']}, {paths['html']} and {paths['json']}")
