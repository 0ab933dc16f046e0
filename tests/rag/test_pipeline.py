"""``ask`` and ``rag ask``: extractive answers without a generator, generated answers with the
tiny random models over cached and uncached prompts, citations and timings."""

from __future__ import annotations

import json

import pytest

from rag.cli import main
from rag.generation.cache_build import build_passage_cache
from rag.generation.passage_cache import CacheConfig
from rag.generation.prompt import PromptBuilder
from rag.generation.sampling import SamplingConfig
from rag.extractive import ExtractiveConfig
from rag.pipeline import EXTRACTIVE_LABEL, AnswerStream, AskConfig, ask
from tests.rag.kv_tiny import save_tiny_generator, tiny_generator, tiny_index

TIMINGS = {"retrieval_ms", "ttft_ms", "decode_ms"}
EXTRACTIVE_TIMINGS = {"retrieval_ms", "extract_ms"}  # no first token, no decoding: nothing was generated


def test_extractive_answer_quotes_the_best_sentences_with_citations():
    # Given the tiny index and no generator
    # When
    answer = ask("why is the sky blue?", tiny_index(), None, AskConfig(k=3, extractive=ExtractiveConfig(sentences=2)))
    # Then the answer is marked extractive by its kind (not by text), quotes the sky passage first and cites it as [1]
    assert answer.kind == "extractive" and not answer.answer.startswith(EXTRACTIVE_LABEL)
    assert "scatter" in answer.answer.split("[")[0] and "[1]" in answer.answer
    assert answer.citations[0].n == 1 and answer.citations[0].doc_id == "sky"
    assert set(answer.timings) == EXTRACTIVE_TIMINGS


def test_cached_and_uncached_answers_agree_for_one_passage():
    # Given a float32 cache of the tiny Llama's passage states
    index, gen = tiny_index(), tiny_generator("llama")
    cache = CacheConfig(dtype="float32")
    build_passage_cache(index.path, gen, cache, progress=False)
    base = AskConfig(k=1, cache=cache, sampling=SamplingConfig(max_new_tokens=8))
    # When the same question is answered with a full prefill and over the cached states
    full = ask("why is the sky blue?", index, gen, base)
    cached = ask("why is the sky blue?", index, gen, AskConfig(k=1, cache=cache, kv_cache=True, sampling=base.sampling))
    # Then the greedy answers are identical, and only the question was prefilled in the cached run
    assert full.kind == cached.kind == "generated" and full.answer == cached.answer
    question_tokens = len(PromptBuilder(gen).question_ids("why is the sky blue?", 1))
    assert cached.prompt_tokens == full.prompt_tokens and full.cached_tokens == 0
    assert cached.prompt_tokens - cached.cached_tokens == question_tokens
    assert [c.n for c in cached.citations] == [1] and set(cached.timings) == TIMINGS


def test_stream_pieces_join_to_the_answer():
    # Given
    stream = AnswerStream("what do bees do?", tiny_index(), tiny_generator("qwen2"),
                          AskConfig(k=2, sampling=SamplingConfig(max_new_tokens=6)))
    # When
    pieces = list(stream)
    # Then
    assert "".join(pieces).strip() == stream.answer.answer and len(stream.answer.citations) == 2


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_tiny_generator(tmp_path_factory.mktemp("tiny-llama"), "llama", seed=2)


def _run_json(capsys, argv):
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_cli_ask_extractive_json(capsys):
    # When asked without a generator
    out = _run_json(capsys, ["ask", "how do vaccines work?", "--index", str(tiny_index().path), "-k", "2", "--json"])
    # Then one JSON object carries the answer (its kind in `kind` only), its citations and timings
    assert out["kind"] == "extractive" and not out["answer"].startswith(EXTRACTIVE_LABEL)
    assert out["answer"].endswith("]") and out["citations"] and set(out["timings"]) == EXTRACTIVE_TIMINGS


@pytest.mark.slow
def test_cli_ask_with_a_generator_uncached_and_cached(capsys, model_dir):
    index = str(tiny_index().path)
    q = ["ask", "how do vaccines work?", "--index", index, "-k", "2", "--json", "--generator", str(model_dir),
         "--max-new-tokens", "5"]
    # When asked with a saved tiny model, then again over its KV cache built by `rag cache build`
    uncached = _run_json(capsys, q)
    assert main(["cache", "build", "--index", index, "--generator", str(model_dir)]) == 0
    assert "passages" in capsys.readouterr().out
    cached = _run_json(capsys, q + ["--kv-cache"])
    # Then each prints answer, citations and timings; the cached run prefilled only the question
    for out in (uncached, cached):
        assert out["kind"] == "generated" and set(out["timings"]) == TIMINGS
        assert [c["n"] for c in out["citations"]] == [1, 2]
    assert cached["cached_tokens"] > 0 and uncached["cached_tokens"] == 0


def test_cli_kv_cache_of_another_model_is_a_clear_error(capsys, tmp_path):
    # Given a model whose states are not in the index (another seed = other weights)
    other = save_tiny_generator(tmp_path / "other", "llama", seed=5)
    build_passage_cache(tiny_index().path, tiny_generator("llama"), progress=False)  # some other cache exists
    # When
    rc = main(["ask", "why is the sky blue?", "--index", str(tiny_index().path), "--generator", str(other), "--kv-cache"])
    # Then one line names the problem and the command that fixes it
    err = capsys.readouterr().err
    assert rc == 1 and "rag cache build" in err and "Traceback" not in err
