"""``rag ask``: answer a question from an index, with numbered citations."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from rag.cli.apps import app


@app.command("ask")
def ask_command(
    question: Annotated[str, typer.Argument(help="The question.")],
    index: Annotated[Path, typer.Option("--index", "-i", help="Index directory.")] = Path("index"),
    generator: Annotated[str | None, typer.Option("--generator", "-g", help="Causal LM (local path or cached HF id); omit for an extractive answer.")] = None,
    kv_cache: Annotated[bool, typer.Option("--kv-cache", help="Reuse the passage KV states stored by `rag cache build` (prefill only the question).")] = False,
    positions: Annotated[str, typer.Option(help="Cached block positions: rerotate (Block-Attention) or composite (TurboRAG).")] = "rerotate",
    hyde: Annotated[bool, typer.Option("--hyde", help="Search with HyDE: average the embeddings of hypothetical answers (needs --generator).")] = False,
    hyde_n: Annotated[int, typer.Option(help="HyDE: hypothetical documents written.", min=1)] = 8,
    mode: Annotated[str, typer.Option("--mode", "-m", help="bm25, dense or hybrid (HyDE always uses dense).")] = "hybrid",
    k: Annotated[int, typer.Option("-k", help="Passages given to the generator.", min=1, max=100)] = 5,
    max_new_tokens: Annotated[int, typer.Option(help="Generated tokens at most.", min=1)] = 256,
    temperature: Annotated[float, typer.Option(help="0 = greedy decoding.", min=0.0)] = 0.0,
    top_p: Annotated[float, typer.Option(help="Nucleus sampling mass.", min=0.0, max=1.0)] = 1.0,
    top_k: Annotated[int, typer.Option(help="Top-k sampling (0 = off).", min=0)] = 0,
    stop: Annotated[list[str] | None, typer.Option(help="Stop string (repeatable).")] = None,
    seed: Annotated[int | None, typer.Option(help="Sampling seed.")] = None,
    dtype: Annotated[str, typer.Option(help="Generator dtype: float32, bfloat16 or float16.")] = "float32",
    device: Annotated[str, typer.Option(help="Generator device, e.g. cpu or cuda.")] = "cpu",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object: answer, citations, timings.")] = False,
    fid: Annotated[bool, typer.Option("--fid", help="--generator is a T5-family Fusion-in-Decoder reader.")] = False,
    live_layers: Annotated[int | None, typer.Option(help="FiD: read LUMEN memory (`rag cache lumen`) and run only the last K encoder layers.", min=1)] = None,
    num_beams: Annotated[int, typer.Option(help="FiD: beam width (1 = greedy).", min=1)] = 1,
) -> None:
    """Retrieve passages and answer QUESTION citing them as [1], [2], ..."""
    from indexes.errors import InputError
    from rag.generation.generator import Generator, GeneratorConfig
    from rag.generation.kv_blocks import BlockLayout
    from rag.generation.sampling import SamplingConfig
    from rag.hyde import HydeConfig
    from rag.index import open_index
    from rag.pipeline import AnswerStream, AskConfig

    if positions not in ("rerotate", "composite"):
        raise InputError(f"--positions must be rerotate or composite, not {positions!r}")
    if fid:
        _ask_fid(question, index, generator, k, mode, live_layers, num_beams, max_new_tokens, device, as_json, kv_cache, hyde)
        return
    if live_layers is not None:
        raise InputError("--live-layers is a FiD option: add --fid")
    if (kv_cache or hyde) and generator is None:
        raise InputError(f"{'--kv-cache' if kv_cache else '--hyde'} needs --generator MODEL")
    config = AskConfig(
        k=k, mode=mode, kv_cache=kv_cache, layout=BlockLayout(positions=positions),
        hyde=HydeConfig(n=hyde_n, seed=seed) if hyde else None,
        sampling=SamplingConfig(max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, top_k=top_k,
                                stop=tuple(stop or ()), seed=seed),
    )
    idx = open_index(index)
    gen = Generator.load(GeneratorConfig(generator, dtype=dtype, device=device)) if generator else None
    stream = AnswerStream(question, idx, gen, config)
    if as_json:
        for _ in stream:
            pass
        typer.echo(json.dumps(stream.answer.to_dict(), ensure_ascii=False))
        return
    for piece in stream:
        typer.echo(piece, nl=False)
    answer = stream.answer
    typer.echo("\n")
    for c in answer.citations:
        typer.echo(f"[{c.n}] {c.id}  {c.title}")
    t = answer.timings
    typer.echo(f"\nretrieval {t['retrieval_ms']:.0f} ms · first token {t['ttft_ms']:.0f} ms · decode {t['decode_ms']:.0f} ms", err=True)


def _ask_fid(question, index, generator, k, mode, live_layers, num_beams, max_new_tokens, device, as_json, kv_cache, hyde) -> None:
    from indexes.errors import InputError
    from rag.fid.answer import FiDAnswerer
    from rag.fid.reader import FiDConfig
    from rag.index import open_index
    from rag.pipeline import AskConfig, ask_fid

    if generator is None:
        raise InputError("--fid needs --generator T5_MODEL_DIR")
    if kv_cache or hyde:
        raise InputError("--kv-cache and --hyde are decoder-only options; they do not combine with --fid")
    reader = FiDAnswerer.load(generator, index, FiDConfig(n_passages=k, num_beams=num_beams, max_new_tokens=max_new_tokens),
                              live_layers=live_layers, device=device)
    answer = ask_fid(question, open_index(index), reader, AskConfig(k=k, mode=mode))
    if as_json:
        typer.echo(json.dumps(answer.to_dict(), ensure_ascii=False))
        return
    typer.echo(answer.answer + "\n")
    for c in answer.citations:
        typer.echo(f"[{c.n}] {c.id}  {c.title}")
