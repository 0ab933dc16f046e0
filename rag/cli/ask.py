"""``rag ask``: answer a question (or a file of them) from an index, with numbered citations."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from rag.cli.apps import app
from rag.cli.checks import check_rerank_options, number_in
from rag.cli.choices import ModelDType, SearchMode
from rag.cli.options import (MAX_NEW_TOKENS, DeviceOption, EncoderBackendOption, FilterOption, MaxNewTokensOption,
                             RerankDepthOption, RerankOption, RerankWeightOption, load_reranker,
                             resolve_device)
from rag.cli.path_options import (FUSION, FUSION_TEMPERATURE, POSITIONS, RAG_SEQUENCE_DECODING, EvictOption, FusionOption,
                                  FusionTemperatureOption, KVBudgetOption, KVCacheOption, PositionsOption,
                                  RagSequenceDecodingOption, SelectBlocksOption, ask_fields, path_config)
from rag.extractive import ExtractiveConfig
from rag.wording import counted


@app.command("ask")
def ask_command(
    ctx: typer.Context,
    question: Annotated[str | None, typer.Argument(help="The question (omit with --questions).")] = None,
    questions: Annotated[Path | None, typer.Option(help="Batch mode: JSONL of {id, question} (also BEIR {_id, text} "
                                                   "or QA-set rows); models are loaded once.")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Batch mode: answers JSONL to write, one "
                                             "{id, question, answer, kind, citations, timings} per line; - for stdout.")] = None,
    index: Annotated[Path, typer.Option("--index", "-i", help="Index directory.")] = Path("index"),
    generator: Annotated[str | None, typer.Option("--generator", "-g", help="Causal LM (local path or cached HF id); omit for an extractive answer.")] = None,
    kv_cache: KVCacheOption = False,
    positions: PositionsOption = POSITIONS,
    fusion: FusionOption = FUSION,
    fusion_temperature: FusionTemperatureOption = FUSION_TEMPERATURE,
    rag_sequence_decoding: RagSequenceDecodingOption = RAG_SEQUENCE_DECODING,
    select_blocks: SelectBlocksOption = None,
    evict: EvictOption = None,
    kv_budget: KVBudgetOption = None,
    hyde: Annotated[bool, typer.Option("--hyde", help="Search with HyDE: average the embeddings of hypothetical answers (needs --generator).")] = False,
    hyde_n: Annotated[int, typer.Option(help="HyDE: hypothetical documents written.", min=1)] = 8,
    mode: Annotated[SearchMode, typer.Option("--mode", "-m", help="Retrieval mode (HyDE always uses dense).")] = "hybrid",
    k: Annotated[int, typer.Option("-k", help="Passages given to the generator.", min=1, max=100)] = 5,
    max_new_tokens: MaxNewTokensOption = MAX_NEW_TOKENS,
    temperature: Annotated[float, typer.Option(help="0 = greedy decoding.", min=0.0, callback=number_in(0, None))] = 0.0,
    top_p: Annotated[float, typer.Option(help="Nucleus sampling mass.", min=0.0, max=1.0)] = 1.0,
    top_k: Annotated[int, typer.Option(help="Top-k sampling (0 = off).", min=0)] = 0,
    stop: Annotated[list[str] | None, typer.Option(help="Stop string (repeatable).")] = None,
    seed: Annotated[int | None, typer.Option(min=0, help="Sampling seed.")] = None,
    dtype: Annotated[ModelDType, typer.Option(help="Generator dtype.")] = "float32",
    device: DeviceOption = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object: answer, citations, timings.")] = False,
    fid: Annotated[bool, typer.Option("--fid", help="--generator is a T5-family Fusion-in-Decoder reader.")] = False,
    live_layers: Annotated[int | None, typer.Option(help="FiD: read LUMEN memory (`rag cache lumen`) and run only the last K encoder layers.", min=1)] = None,
    num_beams: Annotated[int, typer.Option(help="FiD: beam width (1 = greedy).", min=1)] = 1,
    cross_kv_groups: Annotated[int | None, typer.Option(help="FiD: FiDO decoder with G key/value heads shared by the cross-attention heads (1 = multi-query; mean-pooled, as GQA uptraining; the model should be fine-tuned so).", min=1)] = None,
    cross_every: Annotated[int | None, typer.Option(help="FiD: FiDO decoder cross-attending only in every K-th layer (0, K, 2K, ...).", min=1)] = None,
    sentences: Annotated[int, typer.Option(help="Extractive answers: sentences quoted.", min=1)] = ExtractiveConfig.sentences,
    min_score: Annotated[float, typer.Option(help="Extractive answers: least cosine of the best sentence to the "
                                             "question, below which the answer is 'no answer found' (-1 = always "
                                             "quote).", min=-1.0, max=1.0)] = ExtractiveConfig.min_score,
    filter: FilterOption = None,
    rerank: RerankOption = None,
    rerank_depth: RerankDepthOption = 100,
    rerank_weight: RerankWeightOption = None,
    encoder_backend: EncoderBackendOption = "auto",
) -> None:
    """Retrieve passages and answer QUESTION citing them as [1], [2], ...

    With --questions FILE --out answers.jsonl every question of FILE is answered with the models
    loaded once, one JSON line per question (the rows of --json, plus the question's id).
    """
    check_rerank_options(ctx, rerank)
    from indexes.errors import InputError
    from indexes.filters import parse_filter
    from rag.generation.generator import Generator, GeneratorConfig
    from rag.generation.sampling import SamplingConfig
    from rag.hyde import HydeConfig
    from rag.index import open_index
    from rag.pipeline import EXTRACTIVE_LABEL, AnswerKind, AnswerStream, AskConfig, open_batch_index

    if (question is None) == (questions is None):
        raise InputError("give a QUESTION, or --questions FILE with --out FILE for a batch")
    if (questions is None) != (out is None):
        raise InputError("--questions FILE and --out FILE go together (--out - prints the answers JSONL)")
    expr = parse_filter(filter) if filter is not None else None
    extractive = ExtractiveConfig(sentences=sentences, min_score=min_score)
    device = resolve_device(device)
    if rerank is not None and hyde:
        raise InputError("--rerank reranks BM25, dense or hybrid results, not --hyde ones")
    path = path_config(generator, kv_cache=kv_cache, positions=positions, fusion=fusion, fusion_temperature=fusion_temperature,
                       rag_sequence_decoding=rag_sequence_decoding, select_blocks=select_blocks, evict=evict,
                       kv_budget=kv_budget, fid=fid)
    if fid:
        fido = None
        if cross_kv_groups is not None or cross_every is not None:
            from rag.fid.fido import FiDOConfig

            fido = FiDOConfig(kv_groups=cross_kv_groups, cross_every=cross_every or 1)
        _ask_fid(question, index, generator, k, mode, live_layers, num_beams, max_new_tokens, device, as_json, kv_cache, hyde,
                 questions, out, expr, load_reranker(rerank, rerank_depth, device, rerank_weight), fido, encoder_backend)
        return
    if live_layers is not None:
        raise InputError("--live-layers is a FiD option: add --fid")
    if cross_kv_groups is not None or cross_every is not None:
        raise InputError("--cross-kv-groups and --cross-every are FiD (FiDO) options: add --fid")
    if hyde and generator is None:
        raise InputError("--hyde needs --generator MODEL")
    config = AskConfig(
        k=k, mode=mode, **ask_fields(path),
        hyde=HydeConfig(n=hyde_n, seed=seed) if hyde else None, extractive=extractive,
        sampling=SamplingConfig(max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, top_k=top_k,
                                stop=tuple(stop or ()), seed=seed),
        filter=expr,
    )
    if questions is not None:
        from rag.questions import read_questions

        batch = read_questions(questions)  # a bad file fails before any model loads
    reranker = load_reranker(rerank, rerank_depth, device, rerank_weight, mode)
    idx = (open_index(index, reranker=reranker, encoder_backend=encoder_backend, device=device) if questions is None
           else open_batch_index(index, reranker=reranker, encoder_backend=encoder_backend, device=device))
    idx.where(expr)  # an unknown field or a wrong type fails before any model loads
    gen = Generator.load(GeneratorConfig(generator, dtype=dtype, device=device)) if generator else None
    if questions is not None:
        _write_answers(batch, idx, gen, config, None, out)
        return
    stream = AnswerStream(question, idx, gen, config)
    if as_json:
        for _ in stream:
            pass
        typer.echo(json.dumps(stream.answer.to_dict(), ensure_ascii=False))
        return
    for n, piece in enumerate(stream):
        if n == 0 and stream.answer is not None and stream.answer.kind == AnswerKind.EXTRACTIVE:
            typer.echo(EXTRACTIVE_LABEL + " ", nl=False)  # a heading for people; never part of the JSON answer
        typer.echo(piece, nl=False)
    answer = stream.answer
    typer.echo("\n")
    for c in answer.citations:
        typer.echo(f"[{c.n}] {c.id}  {c.title}")
    t = answer.timings
    if answer.kind == AnswerKind.GENERATED:
        typer.echo(f"\nretrieval {t['retrieval_ms']:.0f} ms · first token {t['ttft_ms']:.0f} ms · decode {t['decode_ms']:.0f} ms", err=True)
    else:
        typer.echo(f"\nretrieval {t['retrieval_ms']:.0f} ms · sentence ranking {t['extract_ms']:.0f} ms", err=True)


def _write_answers(batch, idx, gen, config, reader, out: Path) -> None:
    """Answer ``batch`` and write one JSON line per question to ``out`` (atomically; ``-``: stdout)."""
    import sys

    from tqdm import tqdm

    from indexes.atomic import atomic_write_text
    from rag.cli.options import output_file
    from rag.pipeline import answer_questions

    records = answer_questions(batch, idx, gen, config, reader=reader)
    rows = [json.dumps(r.to_dict(), ensure_ascii=False) + "\n"
            for r in tqdm(records, total=len(batch), desc="answering", unit="q", mininterval=5, file=sys.stderr)]
    with output_file(out) as path:
        atomic_write_text(path, "".join(rows))
    typer.echo(f"wrote {counted(len(rows), 'answer')} to {'stdout' if str(out) == '-' else out}", err=True)


def _ask_fid(question, index, generator, k, mode, live_layers, num_beams, max_new_tokens, device, as_json, kv_cache, hyde,
             questions=None, out=None, expr=None, reranker=None, fido=None, encoder_backend="auto") -> None:
    from indexes.errors import InputError
    from rag.fid.answer import FiDAnswerer
    from rag.fid.reader import FiDConfig
    from rag.generation.sampling import SamplingConfig
    from rag.index import open_index
    from rag.pipeline import AskConfig, ask_fid

    if generator is None:
        raise InputError("--fid needs --generator T5_MODEL_DIR")
    if kv_cache or hyde:
        raise InputError("--kv-cache and --hyde are decoder-only options; they do not combine with --fid")
    reader = FiDAnswerer.load(generator, index, FiDConfig(n_passages=k, num_beams=num_beams, max_new_tokens=max_new_tokens),
                              live_layers=live_layers, device=device, fido=fido)
    config = AskConfig(k=k, mode=mode, filter=expr, sampling=SamplingConfig(max_new_tokens=max_new_tokens))
    if questions is not None:
        from rag.questions import read_questions

        _write_answers(read_questions(questions), open_index(index, reranker=reranker, encoder_backend=encoder_backend, device=device), None,
                       config, reader, out)
        return
    answer = ask_fid(question, open_index(index, reranker=reranker, encoder_backend=encoder_backend, device=device), reader, config)
    if as_json:
        typer.echo(json.dumps(answer.to_dict(), ensure_ascii=False))
        return
    typer.echo(answer.answer + "\n")
    for c in answer.citations:
        typer.echo(f"[{c.n}] {c.id}  {c.title}")
