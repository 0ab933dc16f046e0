"""``POST /answer`` with ``rag ask``'s generation path: ``kv_cache``, ``fusion``, ``select_blocks``, ``evict``.

Each option answers exactly as ``rag ask`` with the same flags (tiny random Llama: the answers are
noise, but the same noise proves the same path ran), streamed or not; bad values are 422s naming
the field; combinations ``rag ask`` refuses are 422s with its message, naming JSON fields instead
of flags; a server without a causal LM refuses the options.
"""

from __future__ import annotations

import json
import shutil

import pytest

from rag.cli import main
from tests.service.conftest import launch, save_tiny_llama
from tests.service.test_answer_generators import t5_dir  # noqa: F401  (fixture)
from tests.service.test_answer_stream import _events

QUESTION = "why is the sky blue"
MAX_NEW_TOKENS = 8


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    return save_tiny_llama(tmp_path_factory.mktemp("opts-llama") / "llama")


@pytest.fixture(scope="module")
def cached_index(bm25_index, llama, tmp_path_factory):
    """A copy of the BM25 index with a passage KV cache for the tiny Llama."""
    out = tmp_path_factory.mktemp("opts-index") / "lexical"
    shutil.copytree(bm25_index, out)
    assert main(["cache", "build", "--index", str(out), "--generator", str(llama)]) == 0
    return out


@pytest.fixture(scope="module")
def llm_server(cached_index, llama, tmp_path_factory):
    srv = launch(tmp_path_factory.mktemp("opts-srv"), [f"lexical={cached_index}"], extra=("--generator", str(llama)),
                 settings={"RAG_ANSWER_MAX_NEW_TOKENS": str(MAX_NEW_TOKENS)})
    yield srv
    srv.stop()


def _cli(capsys, index, llama, flags: list[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(["ask", QUESTION, "--json", "--index", str(index), "--generator", str(llama), "--mode", "bm25", "-k", "3",
               "--max-new-tokens", str(MAX_NEW_TOKENS), *flags])
    out = capsys.readouterr()
    return rc, out.out, out.err


CASES = {
    "rag-token": ({"fusion": {"method": "rag-token"}}, ["--fusion", "rag-token"]),
    "rag-sequence": ({"fusion": {"method": "rag-sequence", "temperature": 0.5, "decoding": "fast"}},
                     ["--fusion", "rag-sequence", "--fusion-temperature", "0.5", "--rag-sequence-decoding", "fast"]),
    "kv-cache": ({"kv_cache": True}, ["--kv-cache"]),
    "select-blocks": ({"kv_cache": True, "select_blocks": 1}, ["--kv-cache", "--select-blocks", "1"]),
    "evict-h2o": ({"evict": {"method": "h2o", "budget": 24}}, ["--evict", "h2o", "--kv-budget", "24"]),
    "evict-snapkv": ({"evict": {"method": "snapkv", "budget": 24}}, ["--evict", "snapkv", "--kv-budget", "24"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_option_answers_as_rag_ask_with_the_same_flags(capsys, llm_server, cached_index, llama, case):
    # Given the same index, model, k and token budget behind the service and on the command line
    body, flags = CASES[case]
    request = {"question": QUESTION, "k": 3, "mode": "bm25", **body}
    # When both answer, and the service also streams the answer
    with llm_server.client() as c:
        served = c.post("/answer", json=request)
        with c.stream("POST", "/answer", json={**request, "stream": True}) as r:
            streamed = _events(r.read().decode())
    rc, out, err = _cli(capsys, cached_index, llama, flags)
    # Then the same answer text from the same passages, streamed or not
    assert served.status_code == 200, served.text
    assert rc == 0, err
    cli, got = json.loads(out), served.json()
    assert got["kind"] == "generated" and got["answer"] == cli["answer"] and got["answer"]
    assert [c["id"] for c in got["citations"]] == [c["id"] for c in cli["citations"]]
    assert (got["prompt_tokens"], got["cached_tokens"]) == (cli["prompt_tokens"], cli["cached_tokens"])
    assert streamed[-1][0] == "answer" and streamed[-1][1]["answer"] == got["answer"]
    assert "".join(d["text"] for e, d in streamed if e == "token").strip() == got["answer"]


def test_the_options_change_the_answer_path(llm_server):
    # Given / When: the cached path with one selected block, and plain concat
    with llm_server.client() as c:
        plain = c.post("/answer", json={"question": QUESTION, "k": 3, "mode": "bm25"}).json()
        selected = c.post("/answer", json={"question": QUESTION, "k": 3, "mode": "bm25", "kv_cache": True,
                                           "select_blocks": 1}).json()
    # Then the request's options were applied: one cited block, its states read from the store
    assert len(plain["citations"]) == 3 and plain["cached_tokens"] == 0
    assert len(selected["citations"]) == 1 and selected["cached_tokens"] > 0


@pytest.mark.parametrize("body, field", [
    ({"fusion": {"method": "rag-doc"}}, "fusion.method"),
    ({"fusion": {"method": "rag-token", "temperature": 0}}, "fusion.temperature"),
    ({"fusion": {"method": "rag-token", "beam": 2}}, "fusion.beam"),
    ({"fusion": "rag-token"}, "fusion"),
    ({"select_blocks": 0, "kv_cache": True}, "select_blocks"),
    ({"evict": {"method": "lru", "budget": 8}}, "evict.method"),
    ({"evict": {"method": "h2o"}}, "evict.budget"),
    ({"evict": {"method": "h2o", "budget": 0}}, "evict.budget"),
    ({"kv_cache": "yes please"}, "kv_cache"),
])
def test_bad_values_are_422s_naming_the_field(llm_server, body, field):
    # When
    with llm_server.client() as c:
        r = c.post("/answer", json={"question": QUESTION, "mode": "bm25", **body})
    # Then
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "validation_error" and error["fields"] == [field] and error["message"].startswith(field)


@pytest.mark.parametrize("body, flags", [
    ({"select_blocks": 2}, ["--select-blocks", "2"]),
    ({"evict": {"method": "h2o", "budget": 9}, "kv_cache": True}, ["--evict", "h2o", "--kv-budget", "9", "--kv-cache"]),
    ({"evict": {"method": "snapkv", "budget": 9}, "fusion": {"method": "rag-token"}},
     ["--evict", "snapkv", "--kv-budget", "9", "--fusion", "rag-token"]),
], ids=["select-without-kv-cache", "evict-with-kv-cache", "evict-with-rag-fusion"])
@pytest.mark.parametrize("stream", [False, True])
def test_refused_combinations_are_422s_with_the_clis_message_in_json_field_names(capsys, llm_server, cached_index, llama,
                                                                                 body, flags, stream):
    # Given the CLI's refusal of the same options
    rc, _, err = _cli(capsys, cached_index, llama, flags)
    assert rc == 1
    cli_message = err.removeprefix("rag: error: ").strip()
    # When the service gets them (streamed or not)
    with llm_server.client() as c:
        r = c.post("/answer", json={"question": QUESTION, "mode": "bm25", "stream": stream, **body})
    # Then a JSON 422 (never a stream) with that message, the flags spelled as the JSON fields
    assert r.status_code == 422 and r.headers["content-type"] == "application/json", r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_input" and "--" not in error["message"]
    spelled = {"--select-blocks": "select_blocks", "--kv-cache": "kv_cache", "--evict": "evict", "--fusion": "fusion"}
    for flag, name in spelled.items():
        cli_message = cli_message.replace(flag, name)
    assert error["message"] == cli_message


def test_kv_cache_on_an_index_without_one_is_a_422_naming_the_build_command(generator_server):
    # Given a causal-LM server over an index without a passage KV cache
    with generator_server.client() as c:
        # When the request reads passage states, streamed or not
        plain = c.post("/answer", json={"question": QUESTION, "mode": "bm25", "kv_cache": True})
        streamed = c.post("/answer", json={"question": QUESTION, "mode": "bm25", "kv_cache": True, "stream": True})
    # Then a JSON 422 that says how to build one, and names no CLI option of the request
    for r in (plain, streamed):
        assert r.status_code == 422 and r.headers["content-type"] == "application/json", r.text
        message = r.json()["error"]["message"]
        assert "has no passage KV cache" in message and "rag cache build" in message and "--kv-cache" not in message


@pytest.mark.parametrize("body", [{"fusion": {"method": "rag-token"}}, {"kv_cache": True, "select_blocks": 1},
                                  {"evict": {"method": "h2o", "budget": 9}}], ids=["fusion", "select_blocks", "evict"])
def test_an_extractive_server_refuses_the_options(server, body):
    # Given the sample index served without a generator (extractive answers)
    with server.client() as c:
        r = c.post("/answer", json={"question": QUESTION, **body})
    # Then 422 naming the options and what they need
    assert r.status_code == 422, r.text
    message = r.json()["error"]["message"]
    verb = "needs" if len(body) == 1 else "need"
    assert message.startswith(f"{', '.join(body)} {verb} a decoder-only generator") and "no generator" in message
    assert "--" not in message  # REST errors name JSON fields and settings, never CLI flags


def test_a_fid_server_refuses_the_options(start_server, bm25_index, t5_dir, tmp_path):  # noqa: F811
    # Given a Fusion-in-Decoder reader behind the service
    srv = start_server(tmp_path, [f"lexical={bm25_index}"], extra=("--generator", str(t5_dir)))
    try:
        with srv.client() as c:
            r = c.post("/answer", json={"question": QUESTION, "mode": "bm25", "fusion": {"method": "rag-sequence"},
                                        "stream": True})
            ok = c.post("/answer", json={"question": QUESTION, "mode": "bm25", "fusion": {"method": "concat"}})
    finally:
        srv.stop()
    # Then the option is a JSON 422 that says why; the default path (concat) still answers
    assert r.status_code == 422 and r.headers["content-type"] == "application/json", r.text
    assert r.json()["error"]["message"].startswith("fusion needs a decoder-only generator")
    assert "Fusion-in-Decoder" in r.json()["error"]["message"] and "--" not in r.json()["error"]["message"]
    assert ok.status_code == 200 and ok.json()["kind"] == "generated"
