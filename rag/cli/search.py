"""``rag search``: one query, or a batch of queries written as a TREC run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

import typer

from rag.cli.apps import app
from rag.cli.checks import check_rerank_options
from rag.cli.choices import SearchMode
from rag.cli.options import (DeviceOption, EncoderBackendOption, FilterOption, RerankDepthOption, RerankOption, RerankWeightOption, index_device,
                             load_reranker, output_file, resolve_device)
from rag.wording import counted

Expansion = Literal["hyde", "query2doc"]


@app.command("search")
def search_command(
    ctx: typer.Context,
    query: Annotated[str | None, typer.Argument(help="The query text (omit with --queries).")] = None,
    index: Annotated[Path, typer.Option("--index", "-i", help="Index directory.")] = Path("index"),
    mode: Annotated[SearchMode, typer.Option("--mode", "-m", help="Retrieval mode.")] = "hybrid",
    k: Annotated[int, typer.Option("-k", help="Number of results.", min=1, max=10000)] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object {hits: [...]}.")] = False,
    queries: Annotated[Path | None, typer.Option(help="Batch mode: queries JSONL (_id, text) or TSV.")] = None,
    run: Annotated[Path | None, typer.Option(help="Batch mode: write a TREC run file here; - for stdout.")] = None,
    per_doc: Annotated[bool, typer.Option("--per-doc/--per-passage", help="Rank documents by their best passage.")] = False,
    snippet: Annotated[int, typer.Option(help="Characters of text shown per hit (text output).", min=1)] = 200,
    hyde: Annotated[bool, typer.Option("--hyde", help="HyDE: search the dense index with hypothetical documents (needs --generator); same as --expand hyde.")] = False,
    expand: Annotated[Expansion | None, typer.Option(help="LLM query expansion (needs --generator): hyde (dense only: mean of query and hypothetical-document embeddings) or query2doc (a pseudo-document appended to the query; any --mode).")] = None,
    generator: Annotated[str | None, typer.Option("--generator", "-g", help="Causal LM for --hyde/--expand (local path or cached HF id).")] = None,
    hyde_n: Annotated[int, typer.Option(help="HyDE: hypothetical documents written.", min=1)] = 8,
    seed: Annotated[int | None, typer.Option(min=0, help="HyDE sampling seed.")] = None,
    encoder_backend: EncoderBackendOption = "auto",
    query_encoder: Annotated[Path | None, typer.Option(help="Encode queries with this model, distilled from the index's encoder (`rag train query-encoder`).")] = None,
    filter: FilterOption = None,
    rerank: RerankOption = None,
    rerank_depth: RerankDepthOption = 100,
    rerank_weight: RerankWeightOption = None,
    device: DeviceOption = "auto",
) -> None:
    """Search an index with BM25, dense or hybrid retrieval."""
    check_rerank_options(ctx, rerank)
    from indexes.errors import InputError
    from indexes.filters import parse_filter
    from rag.index import open_index
    from rag.retrievers import check_query, search_documents

    expr = parse_filter(filter) if filter is not None else None  # bad syntax fails before the index opens
    if rerank is not None and (hyde or expand == "hyde"):
        raise InputError("--rerank reranks BM25, dense or hybrid results, not --hyde ones")
    reranker = load_reranker(rerank, rerank_depth, device, rerank_weight, mode)
    idx = open_index(index, encoder_backend=encoder_backend, query_encoder=query_encoder, reranker=reranker,
                     device=index_device(device))
    where = idx.where(expr)
    limit = len(idx.store) if where is None else where.count
    if queries is not None or run is not None:
        if queries is None or run is None or query is not None:
            raise InputError("batch search needs both --queries and --run, and no QUERY argument")
        if hyde or expand is not None:
            raise InputError("--hyde/--expand search one QUERY; batch runs with expansion: eval.benchmarks.query2doc_scifact")
        from rag.queries import load_queries, write_trec_run
        from rag.batch import search_run

        result = search_run(idx, load_queries(queries), mode, k=k, per_doc=True, progress=True, where=where)
        with output_file(run) as path:
            write_trec_run(path, result, tag=f"rag-{mode}")
        typer.echo(f"wrote {counted(sum(map(len, result.values())), 'result')} for {counted(len(result), 'query', 'queries')} to {'standard output' if str(run) == '-' else run}", err=True)
        return
    if query is None:
        raise InputError("give a QUERY, or --queries FILE --run OUT.trec for batch search")
    check_query(query)
    if hyde and expand not in (None, "hyde"):
        raise InputError(f"--hyde and --expand {expand} are two expansions: give one")
    if expand is not None and generator is None:
        raise InputError(f"--expand {expand} needs --generator MODEL")
    if hyde or expand == "hyde":
        if generator is None:
            raise InputError("--hyde needs --generator MODEL")
        from rag.generation.generator import Generator, GeneratorConfig
        from rag.hyde import HydeConfig, hypothetical_documents, hyde_vector

        gen = Generator.load(GeneratorConfig(generator, device=resolve_device(device)))
        dense = idx.dense
        v = hyde_vector(query, hypothetical_documents(query, gen, HydeConfig(n=hyde_n, seed=seed)), dense.encoder)  # (d,)
        fetch = lambda depth: dense.search_vectors(v[None, :], depth, where)[0]  # noqa: E731
    elif expand == "query2doc":
        from rag.generation.generator import Generator, GeneratorConfig
        from rag.query2doc import pseudo_documents, query2doc_retriever

        gen = Generator.load(GeneratorConfig(generator, device=resolve_device(device)))
        retriever = query2doc_retriever(idx, mode, pseudo_documents([query], gen))
        fetch = lambda depth: retriever.search(query, depth, where)  # noqa: E731
    else:
        retriever = idx.retriever(mode)
        fetch = lambda depth: retriever.search(query, depth, where)  # noqa: E731
    hits = search_documents(fetch, k, idx.per_document_depth(k), limit) if per_doc else fetch(k)
    if as_json:
        typer.echo(json.dumps({"hits": [h.to_dict() for h in hits]}, ensure_ascii=False))
        return
    if not hits:
        typer.echo("no results")
    for rank, h in enumerate(hits, start=1):
        text = " ".join(h.text.split())
        text = text[:snippet] + ("…" if len(text) > snippet else "")
        typer.echo(f"{rank:>3}. {h.score:8.4f}  {h.id}  {h.title}\n     {text}")
