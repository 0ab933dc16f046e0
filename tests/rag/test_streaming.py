"""``answer_events``: pieces, then the Answer that ``ask`` returns; closing it stops decoding."""

from __future__ import annotations

import pytest
from tests.rag.kv_tiny import tiny_generator, tiny_index

from rag.generation.sampling import SamplingConfig
from rag.pipeline import Answer, AskConfig, ask
from rag.streaming import answer_events

QUESTION = "why is the sky blue"


def _drop_timings(a: Answer) -> dict:
    return {k: v for k, v in a.to_dict().items() if k != "timings"}


def test_generated_pieces_then_the_same_answer_as_ask():
    # Given a tiny random causal LM and a 12-token budget
    gen, index = tiny_generator("llama"), tiny_index()
    config = AskConfig(k=2, mode="bm25", sampling=SamplingConfig(max_new_tokens=12))
    # When the answer is streamed
    items = list(answer_events(QUESTION, index, config, generator=gen))
    # Then: text pieces, one per decoded token at most, then one Answer equal to ask()'s
    *pieces, last = items
    assert all(isinstance(p, str) for p in pieces) and 1 < len(pieces) <= 12
    assert isinstance(last, Answer) and last.kind == "generated"
    assert "".join(pieces).strip() == last.answer
    assert _drop_timings(last) == _drop_timings(ask(QUESTION, index, gen, config))
    assert set(last.timings) == {"retrieval_ms", "ttft_ms", "decode_ms"}


def test_extractive_answer_is_one_piece():
    index = tiny_index()
    config = AskConfig(k=2, mode="bm25")
    items = list(answer_events(QUESTION, index, config))
    assert len(items) == 2 and items[0] == items[1].answer and items[1].kind == "extractive"
    assert _drop_timings(items[1]) == _drop_timings(ask(QUESTION, index, None, config))


def test_closing_the_stream_stops_the_decoding_loop(monkeypatch):
    # Given a generator whose forward passes are counted, and a budget of 200 tokens
    gen, index = tiny_generator("llama"), tiny_index()
    calls = []
    forward = gen.forward
    monkeypatch.setattr(gen, "forward", lambda *a, **kw: calls.append(1) or forward(*a, **kw))
    config = AskConfig(k=2, mode="bm25", sampling=SamplingConfig(max_new_tokens=200))
    events = answer_events(QUESTION, index, config, generator=gen)
    # When the consumer takes three pieces and closes the stream (a client went away)
    taken = [next(events) for _ in range(3)]
    events.close()
    # Then no forward pass ran after the close: prefill plus at most one step per piece taken
    assert all(isinstance(p, str) for p in taken)
    assert len(calls) <= 1 + len(taken)
    with pytest.raises(StopIteration):
        next(events)


def test_rag_ask_prints_each_piece_as_it_is_decoded(tmp_path, monkeypatch):
    # Given a saved tiny model whose forward passes are logged, and a stdout that logs each flush
    import io
    import sys

    from tests.rag.kv_tiny import save_tiny_generator

    from rag.cli import main
    from rag.generation.generator import Generator

    log: list[str] = []
    forward = Generator.forward
    monkeypatch.setattr(Generator, "forward", lambda self, *a, **kw: log.append("forward") or forward(self, *a, **kw))

    class Terminal(io.StringIO):
        def flush(self) -> None:
            if self.getvalue():
                log.append("print")
            self.seek(0)
            self.truncate()

    monkeypatch.setattr(sys, "stdout", Terminal())
    model = save_tiny_generator(tmp_path / "m", "llama")
    # When `rag ask` answers (text mode, not --json)
    assert main(["ask", QUESTION, "--index", str(tiny_index().path), "-k", "2", "--mode", "bm25",
                 "--generator", str(model), "--max-new-tokens", "8"]) == 0
    # Then pieces reached stdout between decoding steps, not all after the last one
    first_print = log.index("print")
    assert "forward" in log[first_print:]
    assert log[first_print:].count("print") > 2


def test_a_fid_answer_is_one_piece_then_ask_fids_answer():
    # Given a stand-in FiD answerer (the real one is exercised over HTTP in tests/service) reading 2 passages
    from types import SimpleNamespace

    from rag.pipeline import ask_fid

    reader = SimpleNamespace(answer=lambda question, hits, **decoding: f"{len(hits)} passages read [1]",
                             reader=SimpleNamespace(config=SimpleNamespace(n_passages=2)))
    index, config = tiny_index(), AskConfig(k=3, mode="hybrid")
    # When
    items = list(answer_events(QUESTION, index, config, reader=reader))
    # Then the whole text, then the Answer ask_fid gives, citing the 2 passages read
    assert items[0] == "3 passages read [1]" and len(items) == 2
    assert _drop_timings(items[1]) == _drop_timings(ask_fid(QUESTION, index, reader, config))
    assert [c.n for c in items[1].citations] == [1, 2]
