"""``POST /answer``'s decoding fields: ``max_new_tokens`` (capped by the server), ``temperature``,
``top_p``, ``top_k``, ``seed`` — each answers exactly as ``rag ask`` with the same flags (tiny random
models: the answers are noise, the same noise proves the same decoding ran); values out of range are
422s naming the field; a server whose generator cannot honour a field refuses it.
"""

from __future__ import annotations

import json

import pytest

from rag.cli import main
from tests.service.test_answer_generation_options import (  # noqa: F401  (fixtures)
    MAX_NEW_TOKENS, QUESTION, _cli, cached_index, llama, llm_server)
from tests.service.test_answer_generators import t5_dir  # noqa: F401  (fixture)
from tests.service.test_answer_stream import _events


def _served(server, body: dict) -> tuple[dict, str]:
    """The answer to ``body`` (bm25, k = 3), and the text of the same request streamed."""
    request = {"question": QUESTION, "k": 3, "mode": "bm25", **body}
    with server.client() as c:
        r = c.post("/answer", json=request)
        assert r.status_code == 200, r.text
        with c.stream("POST", "/answer", json={**request, "stream": True}) as s:
            events = _events(s.read().decode())
    assert events[-1][0] == "answer", events
    return r.json(), events[-1][1]["answer"]


def test_max_new_tokens_answers_as_rag_ask_with_the_same_budget(capsys, llm_server, cached_index, llama):  # noqa: F811
    # Given a server capped at MAX_NEW_TOKENS (8) and a request for 2
    # When it answers (streamed or not), as does `rag ask --max-new-tokens 2`, and the same request without the field
    short, streamed = _served(llm_server, {"max_new_tokens": 2})
    full, _ = _served(llm_server, {})
    rc, out, err = _cli(capsys, cached_index, llama, ["--max-new-tokens", "2"])
    # Then the same two-token answer; greedy decoding makes it the start of the 8-token one
    assert rc == 0, err
    assert short["answer"] == json.loads(out)["answer"] == streamed and short["answer"]
    assert full["answer"].startswith(short["answer"]) and len(full["answer"]) > len(short["answer"])


def test_sampling_fields_answer_as_rag_ask_with_the_same_flags(capsys, llm_server, cached_index, llama):  # noqa: F811
    # Given a seeded sampling request and the same flags on the command line
    body = {"temperature": 1.5, "top_p": 0.9, "top_k": 50, "seed": 7}
    flags = ["--temperature", "1.5", "--top-p", "0.9", "--top-k", "50", "--seed", "7"]
    # When both answer (the service also streams), and the server answers greedily without the fields
    sampled, streamed = _served(llm_server, body)
    greedy, _ = _served(llm_server, {})
    rc, out, err = _cli(capsys, cached_index, llama, flags)
    # Then the same sample (seeded), which is not the greedy answer: the fields were applied
    assert rc == 0, err
    assert sampled["answer"] == json.loads(out)["answer"] == streamed
    assert sampled["answer"] != greedy["answer"]


@pytest.mark.parametrize("body, field, says", [
    ({"max_new_tokens": MAX_NEW_TOKENS + 1}, "max_new_tokens", f"less than or equal to {MAX_NEW_TOKENS}"),
    ({"max_new_tokens": 0}, "max_new_tokens", "greater than or equal to 1"),
    ({"temperature": -0.5}, "temperature", "greater than or equal to 0"),
    ({"top_p": 0}, "top_p", "greater than 0"),
    ({"top_p": 1.5}, "top_p", "less than or equal to 1"),
    ({"top_k": -1}, "top_k", "greater than or equal to 0"),
    ({"seed": -1}, "seed", "greater than or equal to 0"),
])
def test_values_out_of_range_are_422s_naming_the_field(llm_server, body, field, says):
    # When
    with llm_server.client() as c:
        r = c.post("/answer", json={"question": QUESTION, "mode": "bm25", **body})
    # Then
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["fields"] == [field] and error["message"].startswith(field) and says in error["message"]


def test_the_schema_states_the_servers_cap(llm_server):
    # Given / When: the OpenAPI document of a server capped at MAX_NEW_TOKENS
    with llm_server.client() as c:
        schema = c.get("/openapi.json").json()["components"]["schemas"]["AnswerRequest"]["properties"]
    # Then clients see the cap the server enforces
    field = schema["max_new_tokens"]
    bound = next(b["maximum"] for b in field.get("anyOf", [field]) if "maximum" in b)
    assert bound == MAX_NEW_TOKENS


@pytest.mark.parametrize("body, says", [
    ({"temperature": 0.7}, "temperature needs a decoder-only generator"),
    ({"top_k": 5, "seed": 1}, "top_k, seed need a decoder-only generator"),
    ({"max_new_tokens": 4}, "max_new_tokens needs a generator"),
])
def test_an_extractive_server_refuses_decoding_fields(server, body, says):
    # Given the sample index served without a generator (extractive answers)
    with server.client() as c:
        r = c.post("/answer", json={"question": QUESTION, **body})
    # Then 422 naming the fields and what they need, never a CLI flag
    assert r.status_code == 422, r.text
    message = r.json()["error"]["message"]
    assert message.startswith(says) and "no generator" in message and "--" not in message


def test_a_fid_server_honours_max_new_tokens_and_refuses_sampling(capsys, start_server, bm25_index, t5_dir, tmp_path):  # noqa: F811
    # Given a Fusion-in-Decoder reader behind the service, and `rag ask --fid` with a budget of 2 tokens
    srv = start_server(tmp_path, [f"lexical={bm25_index}"], extra=("--generator", str(t5_dir)))
    try:
        short, streamed = _served(srv, {"max_new_tokens": 2})
        full, _ = _served(srv, {})  # the server's cap (256)
        with srv.client() as c:
            refused = c.post("/answer", json={"question": QUESTION, "mode": "bm25", "temperature": 0.5})
    finally:
        srv.stop()
    capsys.readouterr()
    rc = main(["ask", QUESTION, "--json", "--index", str(bm25_index), "--generator", str(t5_dir), "--fid", "--mode", "bm25",
               "-k", "3", "--max-new-tokens", "2"])
    out = capsys.readouterr()
    # Then the reader's answer is the CLI's, two tokens at most; sampling is a 422 that says why
    assert rc == 0, out.err
    assert short["answer"] == json.loads(out.out)["answer"] == streamed
    assert full["answer"].startswith(short["answer"]) and len(full["answer"]) > len(short["answer"])
    assert refused.status_code == 422 and refused.json()["error"]["message"].startswith("temperature needs a decoder-only")
