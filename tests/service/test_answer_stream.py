"""``POST /answer`` with ``"stream": true``: Server-Sent Events over real HTTP.

Order (``token`` events, then one ``answer``), the final event equal to the non-streamed answer,
errors found before any work as ordinary JSON errors, and a disconnect that stops generation.
"""

from __future__ import annotations

import json
import re
import time

from tests.service.conftest import launch, save_tiny_llama
from fastapi import Request  # module level: FastAPI resolves the route's annotations here

QUESTION = "why is the sky blue"


def _events(text: str) -> list[tuple[str, dict]]:
    """``[(event, data), ...]`` of a complete text/event-stream body."""
    out = []
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.split("\n"))
        out.append((fields["event"], json.loads(fields["data"])))
    return out


def _stream(client, body: dict) -> tuple[list[tuple[str, dict]], dict]:
    with client.stream("POST", "/answer", json={**body, "stream": True}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = _events(r.read().decode())
    plain = client.post("/answer", json=body)
    assert plain.status_code == 200
    return events, plain.json()


def _without_timings(answer: dict) -> dict:
    return {k: v for k, v in answer.items() if k != "timings"}


def test_extractive_stream_is_tokens_then_the_non_streamed_answer(server):
    # Given the sample index without a generator (extractive answers), and the key
    with server.client() as c:
        # When the same question is asked streamed and not streamed
        events, plain = _stream(c, {"question": QUESTION, "k": 3, "mode": "hybrid"})
    # Then token events come first, one answer event last, equal to the plain response but for timings
    names = [e for e, _ in events]
    assert names[-1] == "answer" and set(names[:-1]) == {"token"}
    final = events[-1][1]
    assert _without_timings(final) == _without_timings(plain)
    assert set(final["timings"]) == set(plain["timings"])
    assert "".join(d["text"] for e, d in events if e == "token").strip() == final["answer"]
    assert final["kind"] == "extractive" and final["index"] == "sample"


def test_generated_stream_sends_a_token_at_a_time_and_ends_with_the_plain_answer(generator_server):
    # Given a tiny random causal LM (24 new tokens at most) behind the service
    with generator_server.client() as c:
        # When
        events, plain = _stream(c, {"question": QUESTION, "k": 2, "mode": "bm25"})
    # Then several token events (greedy decoding: the same text as the plain answer), then the answer
    tokens = [d["text"] for e, d in events if e == "token"]
    assert [e for e, _ in events] == ["token"] * len(tokens) + ["answer"]
    assert 1 < len(tokens) <= 24
    final = events[-1][1]
    assert final["kind"] == "generated" and final["prompt_tokens"] > 0
    assert "".join(tokens).strip() == final["answer"]
    assert _without_timings(final) == _without_timings(plain)


def test_errors_found_before_any_work_are_json_not_a_stream(server, generator_server):
    # Given requests the service refuses before answering
    with server.client() as c:
        unknown = c.post("/answer", json={"question": QUESTION, "index": "nope", "stream": True})
        bad_k = c.post("/answer", json={"question": QUESTION, "k": 0, "stream": True})
    with server.client() as c:
        no_key = c.post("/answer", json={"question": QUESTION, "stream": True}, headers={"Authorization": "Bearer wrong"})
    with generator_server.client() as c:
        bad_mode = c.post("/answer", json={"question": QUESTION, "mode": "dense", "stream": True})
    # Then each is the usual JSON error body with its status
    for r, status, code in [(unknown, 404, "index_not_found"), (bad_k, 422, "validation_error"),
                            (no_key, 401, "unauthorized"), (bad_mode, 422, "invalid_input")]:
        assert r.status_code == status and r.headers["content-type"] == "application/json", r.text
        assert r.json()["error"]["code"] == code


def _pieces_decoded(client) -> float:
    text = client.get("/metrics").text
    return float(re.search(r"^rag_streamed_answer_pieces_total (\S+)$", text, re.M).group(1))


def test_a_client_that_disconnects_stops_the_generation(bm25_index, tmp_path):
    # Given a model that never emits end-of-sequence and a 5000-token budget (tens of seconds of decoding)
    model = save_tiny_llama(tmp_path / "no-eos", eos=False)
    budget = 5000
    srv = launch(tmp_path, [f"lexical={bm25_index}"], extra=("--generator", str(model)),
                 settings={"RAG_ANSWER_MAX_NEW_TOKENS": str(budget)})
    try:
        with srv.client() as c:
            # When the client reads the first token event and hangs up
            with c.stream("POST", "/answer", json={"question": QUESTION, "k": 2, "mode": "bm25", "stream": True}) as r:
                first = next(r.iter_lines())
            assert first == "event: token"
            # Then the count of decoded pieces stops growing, far below the budget
            time.sleep(1.0)
            settled = _pieces_decoded(c)
            time.sleep(1.0)
            assert _pieces_decoded(c) == settled
            assert 1 <= settled < budget / 10
            # and the model is free again: the next (short) request is answered
            ok = c.post("/answer", json={"question": "", "k": 1, "mode": "bm25"})
            assert ok.status_code == 422
    finally:
        srv.stop()


class _FailingIndex:
    """An index whose retrieval fails with ``error`` (after the stream has begun)."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def retriever(self, mode, **options):
        return self

    def search(self, query, k, **options):
        raise self.error


def _stream_with_failing_retrieval(error: Exception) -> list[tuple[str, dict]]:
    """Events of ``answer_stream`` in-process, for an index whose retrieval raises ``error``."""
    import anyio
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from rag.pipeline import AskConfig
    from service.observability import Metrics
    from service.state import LoadedIndex
    from service.streaming import answer_stream

    app = FastAPI()
    app.state.metrics = Metrics()
    entry = LoadedIndex("broken", manifest=None, index=_FailingIndex(error))

    @app.post("/answer")
    async def answer(request: Request):
        app.state.limiter = anyio.CapacityLimiter(2)
        return answer_stream(request, entry, QUESTION, AskConfig(k=2, mode="bm25"), None)

    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.post("/answer")
    assert r.status_code == 200
    return _events(r.text)


def test_a_failure_after_the_stream_began_ends_it_with_an_error_event():
    from indexes.errors import InputError

    # Given retrieval that fails with a user error, then with a bug
    # When / Then: one error event with the usual body; a bug's message names no internals
    assert _stream_with_failing_retrieval(InputError("mode: not here")) == [
        ("error", {"error": {"code": "invalid_input", "message": "mode: not here"}})]
    [(name, body)] = _stream_with_failing_retrieval(ZeroDivisionError("secret detail"))
    assert name == "error" and body["error"]["code"] == "internal_error"
    assert "secret" not in body["error"]["message"]
