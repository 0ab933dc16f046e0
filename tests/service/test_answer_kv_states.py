"""``POST /answer`` with ``kv_cache`` opens the passage KV states once per (commit, generator):
later requests share them, concurrent first requests open them once, and a live update (a new
commit after ``PUT``) is answered from the new commit's states, the old ones dropped."""

from __future__ import annotations

import json
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import pytest

import rag.generation.passage_cache as passage_cache
from rag.cli import main
from tests.service.test_answer_generation_options import (  # noqa: F401  (fixtures)
    MAX_NEW_TOKENS, QUESTION, cached_index, llama)


@pytest.fixture
def opens(monkeypatch) -> list[tuple]:
    """Every call of ``open_passage_states`` (index folder, generator name), recorded."""
    calls: list[tuple] = []
    real = passage_cache.open_passage_states

    def counting(index_dir, generator, *args, **kwargs):
        calls.append((str(index_dir), generator.name))
        return real(index_dir, generator, *args, **kwargs)

    monkeypatch.setattr(passage_cache, "open_passage_states", counting)
    return calls


def test_concurrent_first_requests_open_the_states_once(monkeypatch):
    # Given an entry whose states take a while to open, and 8 threads asking at once
    from service.state import LoadedIndex

    calls = []

    def slow_open(index_dir, generator, config, manifest=None):
        calls.append(manifest)
        time.sleep(0.05)
        return object()

    monkeypatch.setattr(passage_cache, "open_passage_states", slow_open)
    manifest = object()
    entry = LoadedIndex("x", manifest=None, index=SimpleNamespace(path=Path("idx"), manifest=manifest))
    generator = SimpleNamespace(name="llm", revision="sha256:1")
    start = threading.Barrier(8)

    def ask(_):
        start.wait()
        return entry.passage_states(generator, passage_cache.CacheConfig())

    # When
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(ask, range(8)))
    # Then one open, of the entry's own commit, shared by all; another cache config is another open
    assert len(calls) == 1 and calls[0] is manifest and all(s is got[0] for s in got)
    assert entry.passage_states(generator, passage_cache.CacheConfig(dtype="float32")) is not got[0] and len(calls) == 2
    entry.drop_states()
    assert entry.passage_states(generator, passage_cache.CacheConfig()) is not got[0] and len(calls) == 3


def _ready(client) -> None:
    deadline = time.monotonic() + 120
    while client.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, client.get("/readyz").text
        time.sleep(0.1)


def _cli_answer(capsys, index: Path, llama: Path) -> dict:  # noqa: F811
    capsys.readouterr()
    rc = main(["ask", QUESTION, "--json", "--index", str(index), "--generator", str(llama), "--mode", "bm25", "-k", "3",
               "--max-new-tokens", str(MAX_NEW_TOKENS), "--kv-cache"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    return json.loads(out.out)


def test_states_are_opened_once_per_commit_and_follow_a_live_update(capsys, opens, cached_index, llama, tmp_path):  # noqa: F811
    # Given a writable in-process service over a copy of the cached index, with the tiny causal LM
    from fastapi.testclient import TestClient

    from service.app import create_app
    from service.settings import Settings

    index = Path(shutil.copytree(cached_index, tmp_path / "lexical"))
    settings = Settings(indexes={"lexical": index}, generator=str(llama), answer_max_new_tokens=MAX_NEW_TOKENS,
                        writable=True, torch_threads=1)
    request = {"question": QUESTION, "k": 3, "mode": "bm25", "kv_cache": True}
    with TestClient(create_app(settings)) as c:
        _ready(c)
        # When: three kv_cache answers (one streamed)
        first = [c.post("/answer", json=request) for _ in range(2)]
        with c.stream("POST", "/answer", json={**request, "stream": True}) as r:
            r.read()
        # Then: the states were opened once, for all three
        assert all(r.status_code == 200 for r in first) and len(opens) == 1
        assert first[0].json()["answer"] == first[1].json()["answer"]
        old_entry = c.app.state.service.indexes["lexical"]
        # When: a document the question retrieves is replaced (a new commit whose store lacks its old states)
        put = c.put("/indexes/lexical/documents", json={"documents": [
            {"id": "sky1", "title": "Why the sky is blue", "text": "Blue sky: air molecules scatter short wavelengths."}]})
        assert put.status_code == 200 and put.json()["replaced"] == 1, put.text
        after = [c.post("/answer", json=request) for _ in range(2)]
    # Then: the new commit's states were opened once, the old commit's dropped, and the answer is
    # the one `rag ask --kv-cache` gives on the updated index (the replaced passage encoded afresh)
    assert len(opens) == 2 and old_entry._states == {}
    cli = _cli_answer(capsys, index, llama)
    for r in after:
        got = r.json()
        assert r.status_code == 200 and got["answer"] == cli["answer"]
        assert [x["id"] for x in got["citations"]] == [x["id"] for x in cli["citations"]]
        assert (got["prompt_tokens"], got["cached_tokens"]) == (cli["prompt_tokens"], cli["cached_tokens"])
    assert "sky1" in [x["id"] for x in after[0].json()["citations"]]
