"""``rag index``: build an index directory from a corpus."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rag.cli.apps import app
from rag.cli.checks import number_in
from rag.cli.choices import BM25Variant, CorpusFormat, Stemmer, Stopwords, VectorBackend
from rag.cli.options import DeviceOption, RayOption, RayWorkersOption, directory_output, ray_config, resolve_device
from rag.encoder import Backend
from rag.llm_embed import Pooling
from rag.wording import counted


@app.command("index")
def index_command(
    corpus: Annotated[Path, typer.Argument(help="Corpus: BEIR/JSONL, CSV/TSV, SQuAD .json file, or a folder of .txt/.md files.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Index directory to create (an existing index there is replaced).",
                                         callback=directory_output)],
    encoder: Annotated[str, typer.Option(help="Dense encoder: 'embedded:all-MiniLM-L6-v2', a local path, a cached HF id, or llm:MODEL (a causal LM's embeddings, e.g. llm:smollm2).")] = "embedded:all-MiniLM-L6-v2",
    llm_pooling: Annotated[Pooling | None, typer.Option(help="With --encoder llm:MODEL: prompteol (default; last token of a one-word prompt), echo (mean over the repeated text) or mean.")] = None,
    no_dense: Annotated[bool, typer.Option("--no-dense", help="Skip the dense index.")] = False,
    no_bm25: Annotated[bool, typer.Option("--no-bm25", help="Skip the BM25 index.")] = False,
    backend: Annotated[VectorBackend, typer.Option(help="Vector search: flat (exact), hnsw or ivfpq (FAISS files), or milvus (--uri).")] = "flat",
    uri: Annotated[str | None, typer.Option(help="--backend milvus: a Milvus Lite file (x.db) or a server (http://host:19530); "
                                                 "a server's token is read from RAG_MILVUS_TOKEN.")] = None,
    collection: Annotated[str | None, typer.Option(help="--backend milvus: collection name (default: rag_<out folder name>).")] = None,
    faiss: Annotated[VectorBackend | None, typer.Option(help="Deprecated alias of --backend.", hidden=True)] = None,
    format: Annotated[CorpusFormat, typer.Option(help="Corpus format (auto: from the file's extension and content).")] = "auto",
    id_field: Annotated[str | None, typer.Option(help="Id field of JSONL/CSV records (default: _id, id, docid).")] = None,
    text_field: Annotated[str | None, typer.Option(help="Text field (default: text, contents, body).")] = None,
    title_field: Annotated[str, typer.Option(help="Title field ('' for none).")] = "title",
    skip_bad_lines: Annotated[bool, typer.Option("--skip-bad-lines", help="Skip malformed records instead of stopping.")] = False,
    passage_words: Annotated[int, typer.Option(help="Split documents longer than this many words into windows.", min=1)] = 512,
    overlap: Annotated[int, typer.Option(help="Words shared by consecutive windows (fewer than --passage-words).", min=0)] = 64,
    query_prefix: Annotated[str, typer.Option(help="Prefix for queries (e5: 'query: ').")] = "",
    passage_prefix: Annotated[str, typer.Option(help="Prefix for passages (e5: 'passage: ').")] = "",
    batch_size: Annotated[int, typer.Option(help="Encoding batch size.", min=1)] = 64,
    encoder_backend: Annotated[Backend, typer.Option(help="Passage encoding: auto (onnx-int8 on CPU, torch on a GPU or where ONNX cannot run the encoder), torch, onnx (ONNX Runtime, same vectors to ~1e-6) or onnx-int8 (quantised); the one used is recorded in the manifest, and queries follow it.")] = "auto",
    encoder_workers: Annotated[int, typer.Option(help="Processes encoding passages (onnx backends; default 1 process using every core).", min=1)] = 1,
    device: DeviceOption = "auto",
    ray: RayOption = None,
    ray_workers: RayWorkersOption = 2,
    stemmer: Annotated[Stemmer, typer.Option(help="BM25 stemmer: english (Snowball), porter or none.")] = "english",
    stopwords: Annotated[Stopwords, typer.Option(help="BM25 stopwords: english (Lucene's list) or none.")] = "english",
    bm25_variant: Annotated[BM25Variant, typer.Option(help="BM25 variant (Kamphuis et al. 2020; lucene as Anserini).")] = "lucene",
    k1: Annotated[float, typer.Option(help="BM25 k1 (term-frequency saturation).", min=0.0, callback=number_in(0, None))] = 0.9,
    b: Annotated[float, typer.Option(help="BM25 b (length normalisation).", min=0.0, max=1.0, callback=number_in(0, 1))] = 0.4,
    kv_cache: Annotated[bool, typer.Option("--kv-cache", help="Also precompute passage KV states for --generator (see `rag cache build`).")] = False,
    generator: Annotated[str | None, typer.Option("--generator", "-g", help="Causal LM whose passage KV states --kv-cache stores.")] = None,
) -> None:
    """Index CORPUS into --out: passage store, BM25 statistics, dense vectors + FAISS, manifest."""
    from pydantic import ValidationError

    from indexes.errors import InputError
    from indexes.manifest import AnalyzerSpec, BM25Spec, ChunkingSpec, MilvusSpec, VectorBackendSpec
    from rag.corpus import CorpusSpec
    from rag.encoder import EncoderConfig
    from rag.indexer import IndexOptions, build_index

    if faiss is not None:
        typer.echo("note: --faiss is deprecated; use --backend", err=True)
    if kv_cache != (generator is not None):
        raise InputError("--kv-cache and --generator MODEL go together")
    if encoder_workers > 1 and encoder_backend == "torch":
        raise InputError("--encoder-workers needs --encoder-backend onnx or onnx-int8 (or auto, the default on a CPU), not torch")
    kind = faiss or backend
    if (kind == "milvus") != (uri is not None) or (collection is not None and uri is None):
        raise InputError("--backend milvus needs --uri (a Milvus Lite file or a server address); --uri and --collection "
                         "go with --backend milvus only")
    ray_cfg = ray_config(ray, ray_workers)
    if ray_cfg is not None and (encoder_workers > 1 or (no_dense and not kv_cache)):
        raise InputError("--ray encodes with its own actors: drop --encoder-workers" if encoder_workers > 1
                         else "--ray runs the dense encoder (and --kv-cache); with --no-dense it has nothing to run")
    import os
    import re

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        options = IndexOptions(
            corpus=CorpusSpec(format=format, id_field=id_field, text_field=text_field, title_field=title_field or None,
                              skip_bad_lines=skip_bad_lines),
            chunking=ChunkingSpec(max_words=passage_words, overlap_words=overlap),
            analyzer=AnalyzerSpec(stemmer=stemmer, stopwords=stopwords),
            bm25=None if no_bm25 else BM25Spec(variant=bm25_variant, k1=k1, b=b),
            encoder=None if no_dense else EncoderConfig(model=encoder, query_prefix=query_prefix,
                                                        passage_prefix=passage_prefix, batch_size=batch_size,
                                                        device=resolve_device(device), backend=encoder_backend,
                                                        workers=encoder_workers,
                                                        onnx_threads=max(1, cores // encoder_workers),
                                                        pooling=llm_pooling),
            backend=VectorBackendSpec(library="milvus", kind="flat") if kind == "milvus" else VectorBackendSpec(kind=kind),
            engine=None if uri is None else MilvusSpec(
                uri=uri, collection=collection or "rag_" + re.sub(r"[^A-Za-z0-9_]", "_", out.resolve().name)),
        )
    except ValidationError as exc:
        err = exc.errors()[0]
        raise InputError(f"invalid option {err['loc'][-1]}: {err['msg']}") from None
    if ray_cfg is None or options.encoder is None:
        manifest, stats = build_index(corpus, out, options)
    else:
        from rag.encoder import Encoder
        from rag.ray_pipeline import RayEncoder, ray_runtime

        with ray_runtime(ray_cfg):
            manifest, stats = build_index(corpus, out, options, encoder=RayEncoder(Encoder(options.encoder), ray_cfg))
    dense_part = f"dense on {manifest.dense.passage_backend}" if manifest.dense and manifest.dense.passage_backend else "dense"
    parts = [p for p, on in (("bm25", manifest.bm25), (dense_part, manifest.dense)) if on]
    from rag.corpus import skipped_note

    skipped = skipped_note(stats.skipped, stats.first_skipped)
    typer.echo(f"indexed {counted(stats.documents, 'document')} as {counted(stats.passages, 'passage')} ({' + '.join(parts)}) into {out} "
               f"in {stats.seconds['total']:.1f}s{skipped}")  # the result: stdout (progress and notes: stderr)
    if kv_cache:
        from rag.generation.cache_build import build_passage_cache
        from rag.generation.generator import Generator, GeneratorConfig

        gen_config = GeneratorConfig(generator)
        if ray_cfg is None:
            report = build_passage_cache(out, Generator.load(gen_config), progress=True)
        else:
            from rag.ray_pipeline import ray_runtime

            with ray_runtime(ray_cfg):
                report = build_passage_cache(out, Generator.load(gen_config), progress=True, ray=ray_cfg,
                                             generator_config=gen_config)
        typer.echo(f"cached KV states of {counted(report.encoded, 'passage')} ({report.skipped} already cached) "
                   f"at {report.passages_per_second:.1f} passages/s")
