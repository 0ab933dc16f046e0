"""``rag eval retrieval``: nDCG@10, Recall@100, MRR@10, MAP@100 of an index on judged queries."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from rag.cli.apps import eval_app
from rag.cli.checks import check_rerank_options
from rag.cli.choices import SearchMode
from rag.wording import counted
from rag.cli.options import (DeviceOption, EncoderBackendOption, FilterOption, RerankDepthOption, RerankOption, RerankWeightOption, directory_output,
                             index_device, load_reranker, output_file)


# --alpha this large next to --rerank is likelier a rerank weight given to the wrong option (intervals
# under 75% coverage are rarely wanted); --alpha is capped at 0.5, so "≥ 0.5" alone would miss 0.45.
SUSPECT_ALPHA = 0.25


@eval_app.command("retrieval")
def eval_retrieval_command(
    ctx: typer.Context,
    index: Annotated[Path, typer.Option("--index", "-i", help="Index directory.")],
    queries: Annotated[Path, typer.Option(help="Queries JSONL (_id, text; metadata is never read), TSV, or SQuAD .json.")],
    qrels: Annotated[Path, typer.Option(help="Qrels: BEIR TSV (query-id corpus-id score), TREC, or SQuAD .json.")],
    mode: Annotated[SearchMode, typer.Option("--mode", "-m", help="Retrieval mode.")] = "hybrid",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object of metrics.")] = False,
    run: Annotated[Path | None, typer.Option(help="Also write the run (TREC format) here; - for stdout.")] = None,
    report: Annotated[Path | None, typer.Option(help="Write report.json/.md/.html (intervals, worst queries) here.",
                                                callback=directory_output)] = None,
    alpha: Annotated[float, typer.Option(help="Significance level of the intervals (--report; they cover 1 - alpha); "
                                              "the rerank weight is --rerank-weight.", min=0.001, max=0.5)] = 0.1,
    filter: FilterOption = None,
    rerank: RerankOption = None,
    rerank_depth: RerankDepthOption = 100,
    rerank_weight: RerankWeightOption = None,
    encoder_backend: EncoderBackendOption = "auto",
    device: DeviceOption = "auto",
) -> None:
    """Evaluate retrieval over the judged queries (documents ranked by their best passage)."""
    check_rerank_options(ctx, rerank)
    from eval.retrieval import evaluate
    from rag.queries import load_qrels, load_queries, write_trec_run
    from indexes.errors import InputError
    from rag.batch import search_run
    from indexes.filters import parse_filter
    from rag.index import open_index

    expr = parse_filter(filter) if filter is not None else None
    judged = load_qrels(qrels)
    all_queries = load_queries(queries)
    missing = [q for q in judged if q not in all_queries]
    if missing:
        raise InputError(f"{qrels}: {len(missing)} judged query ids are not in {queries} (e.g. {missing[0]!r})")
    if rerank is not None and alpha >= SUSPECT_ALPHA:
        typer.echo(f"warning: --alpha {alpha:g} is the significance level of the intervals ({1 - alpha:.0%} coverage), "
                   "not the rerank weight: that is --rerank-weight", err=True)
    reranker = load_reranker(rerank, rerank_depth, device, rerank_weight, mode)
    idx = open_index(index, reranker=reranker, encoder_backend=encoder_backend, device=index_device(device))
    result = search_run(idx, {q: all_queries[q] for q in judged}, mode, k=100, progress=not as_json, where=idx.where(expr))
    tag = f"rag-{mode}" + (f"-rerank{rerank_depth}" if rerank else "")
    if run is not None:
        with output_file(run) as path:
            write_trec_run(path, result, tag=tag)
    means, per_query = evaluate(result, judged)
    if report is not None:
        from eval.retrieval_report import build_report, write_retrieval_report

        config = {"index": str(index), "mode": mode, "qrels": str(qrels)} | ({"filter": filter} if filter else {}) \
            | ({"rerank": rerank, "rerank_depth": rerank_depth, "rerank_weight": reranker.alpha} if rerank else {})
        paths = write_retrieval_report(report, build_report(per_query, result, all_queries, config, alpha, qrels=judged))
        typer.echo(f"wrote {paths['html']}", err=True)
    if as_json:
        reranked = {"rerank": rerank, "rerank_depth": rerank_depth, "rerank_weight": reranker.alpha} if rerank else {}
        typer.echo(json.dumps({"mode": mode, **reranked, "queries": len(judged), **({"filter": json.loads(filter)} if filter else {}),
                               **{m: round(v, 6) for m, v in means.items()}}))
        return
    to_stderr = str(run) == "-"  # stdout carries the run
    how = f"{mode} + rerank top-{rerank_depth} ({rerank}, weight {reranker.alpha:g})" if rerank else mode
    typer.echo(f"{how} on {counted(len(judged), 'judged query', 'judged queries')}", err=to_stderr)
    for name, value in means.items():
        typer.echo(f"  {name:<11} {value:.4f}", err=to_stderr)
