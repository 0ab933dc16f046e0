"""Search over HTTP: every mode, batches, and parity with ``rag search --json``."""

from __future__ import annotations

import json
import shutil
from concurrent.futures import ThreadPoolExecutor

import pytest

from rag.cli import main

HIT_FIELDS = {"id", "doc_id", "score", "title", "text", "metadata"}


@pytest.mark.parametrize("mode", ["bm25", "dense", "hybrid"])
def test_search_every_mode_finds_the_obvious_passage(server, mode):
    # Given a client with the API key
    with server.client() as c:
        # When
        r = c.post("/search", json={"query": "why is the sky blue", "k": 3, "mode": mode})
    # Then
    assert r.status_code == 200
    body = r.json()
    assert body["mode"] == mode and body["index"] == "sample" and body["timing_ms"] >= 0
    assert [set(h) for h in body["hits"]] == [HIT_FIELDS] * 3
    assert body["hits"][0]["id"] == "sky1"
    scores = [h["score"] for h in body["hits"]]
    assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize("mode", ["bm25", "dense", "hybrid"])
def test_http_hits_equal_rag_search_json(server, sample_index, capsys, mode):
    # Given the CLI's answer for the same index, query, mode and k
    query = "rotating storage for search engines"
    assert main(["search", "--index", str(sample_index), "--mode", mode, "-k", "5", "--json", query]) == 0
    cli_hits = json.loads(capsys.readouterr().out)["hits"]
    # When the service answers the same query
    with server.client() as c:
        http_hits = c.post("/search", json={"query": query, "k": 5, "mode": mode}).json()["hits"]
    # Then ids, scores (bit for bit) and every other field are identical
    assert http_hits == cli_hits


def test_batch_equals_single_searches(server):
    # Given
    queries = ["how do vaccines train the immune system", "why is the sky blue", "hard disk seek time"]
    with server.client() as c:
        # When
        batch = c.post("/search/batch", json={"queries": queries, "k": 4, "mode": "hybrid"})
        singles = [c.post("/search", json={"query": q, "k": 4, "mode": "hybrid"}).json()["hits"] for q in queries]
    # Then one result list per query, in order, with the same ids and scores
    assert batch.status_code == 200
    results = [r["hits"] for r in batch.json()["results"]]
    assert [[h["id"] for h in r] for r in results] == [[h["id"] for h in s] for s in singles]
    for r, s in zip(results, singles):
        assert [h["score"] for h in r] == pytest.approx([h["score"] for h in s], rel=1e-5)


def test_concurrent_dense_queries_are_micro_batched_and_correct(server):
    # Given 24 different queries sent at once from 24 threads
    queries = [f"why is the sky blue {i}" if i % 2 else f"vaccines and antibodies {i}" for i in range(24)]
    with server.client() as c:
        expected = {q: c.post("/search", json={"query": q, "k": 3, "mode": "dense"}).json()["hits"] for q in queries}

        def ask(q):
            return c.post("/search", json={"query": q, "k": 3, "mode": "dense"}).json()["hits"]

        # When
        with ThreadPoolExecutor(24) as pool:
            got = dict(zip(queries, pool.map(ask, queries)))
        metrics = c.get("/metrics").text
    # Then each answer belongs to its own query (batch rows never get mixed up) ...
    for q in queries:
        assert [h["id"] for h in got[q]] == [h["id"] for h in expected[q]]
        assert [h["score"] for h in got[q]] == pytest.approx([h["score"] for h in expected[q]], abs=1e-5)
    # ... and at least one encoder call served more than one query.
    count = lambda b: float(next(line.split()[-1] for line in metrics.splitlines()  # noqa: E731
                                 if line.startswith(f'rag_encoder_batch_size_bucket{{le="{b}"}}')))
    assert count("+Inf") > count("1.0")


def test_index_listing_shows_manifest_facts(server):
    # When
    with server.client() as c:
        listing = c.get("/indexes").json()
        one = c.get("/indexes/sample").json()
    # Then
    assert listing["default"] == "sample" and [i["name"] for i in listing["indexes"]] == ["sample"]
    assert one["modes"] == ["bm25", "dense", "hybrid"] and one["documents"] == 20 and one["passages"] == 20
    assert one["encoder"] == "embedded:all-MiniLM-L6-v2" and one["dim"] == 384
    assert one["bm25"]["variant"] == "lucene" and one["bm25"]["k1"] == 0.9
    assert "path" not in json.dumps(one).lower()


def test_answer_is_extractive_with_citations(server):
    # When
    with server.client() as c:
        r = c.post("/answer", json={"question": "Why does the sky look blue?", "k": 3})
    # Then
    assert r.status_code == 200
    body = r.json()
    assert body["kind"] == "extractive" and not body["answer"].startswith("Extractive answer")  # kind in `kind` only
    assert "sky1" in {c["id"] for c in body["citations"]}
    assert set(body["timings"]) == {"retrieval_ms", "extract_ms"}  # nothing generated: no ttft/decode


# A hybrid query with no indexed term: BM25 contributes nothing, dense still ranks.
def test_hybrid_query_without_an_indexed_term_is_answered(server):
    with server.client() as c:
        r = c.post("/search", json={"query": "zzzzqqq", "k": 3, "mode": "hybrid"})
    assert r.status_code == 200 and len(r.json()["hits"]) == 3


def test_onnx_int8_server_equals_rag_search_with_that_backend_and_encodes_one_query_per_call(
        start_server, sample_index, tmp_path, capsys):
    # Given a server whose queries are encoded by the int8 ONNX backend
    pytest.importorskip("onnxruntime")
    srv = start_server(tmp_path, [f"sample={sample_index}"], extra=("--encoder-backend", "onnx-int8"))
    queries = ["rotating storage for search engines", "why is the sky blue", "vaccines and antibodies"]
    try:
        with srv.client() as c:
            # When: the same queries go to the service (also concurrently) and to the CLI with that backend
            http = {q: c.post("/search", json={"query": q, "k": 5, "mode": "hybrid"}).json()["hits"] for q in queries}
            with ThreadPoolExecutor(6) as pool:
                concurrent = list(pool.map(lambda q: c.post("/search", json={"query": q, "k": 5, "mode": "hybrid"}).json()["hits"],
                                           queries * 2))
            metrics = c.get("/metrics").text
    finally:
        srv.stop()
    for q in queries:
        assert main(["search", "--index", str(sample_index), "--mode", "hybrid", "-k", "5", "--json",
                     "--encoder-backend", "onnx-int8", q]) == 0
        # Then ids and scores equal the CLI's (same backend, same one-query calls) ...
        assert http[q] == json.loads(capsys.readouterr().out)["hits"]
    assert [[h["id"] for h in hits] for hits in concurrent] == [[h["id"] for h in http[q]] for q in queries * 2]
    # ... and every encoder call held exactly one query (first come, first served)
    count = lambda b: float(next(line.split()[-1] for line in metrics.splitlines()  # noqa: E731
                                 if line.startswith(f'rag_encoder_batch_size_bucket{{le="{b}"}}')))
    assert count("+Inf") == count("1.0") >= 9


def test_default_server_on_a_default_index_equals_default_rag_search_one_query_per_call(start_server, tmp_path, capsys):
    # Given an index built with every default (passages on onnx-int8 on this CPU) and a server
    # started with every default
    pytest.importorskip("onnxruntime")
    from pathlib import Path

    from indexes.manifest import Manifest

    index = tmp_path / "defaults"
    assert main(["index", str(Path(__file__).parents[1] / "fixtures" / "corpus.jsonl"), "--out", str(index)]) == 0
    assert Manifest.read(index).dense.passage_backend == "onnx-int8"
    srv = start_server(tmp_path, [f"defaults={index}"])
    queries = ["rotating storage for search engines", "why is the sky blue"]
    try:
        with srv.client() as c:
            # When the same queries go to the service and to `rag search`, both without options
            http = {q: c.post("/search", json={"query": q, "k": 5, "mode": "hybrid"}).json()["hits"] for q in queries}
            metrics = c.get("/metrics").text
    finally:
        srv.stop()
    capsys.readouterr()
    for q in queries:
        assert main(["search", "--index", str(index), "--mode", "hybrid", "-k", "5", "--json", q]) == 0
        # Then the hits and scores are the same bits: both encode queries with the index's backend
        assert http[q] == json.loads(capsys.readouterr().out)["hits"]
    # ... and the service's default micro-batch for that (ONNX) backend is one query per call
    count = lambda b: float(next(line.split()[-1] for line in metrics.splitlines()  # noqa: E731
                                 if line.startswith(f'rag_encoder_batch_size_bucket{{le="{b}"}}')))
    assert count("+Inf") == count("1.0") >= 2


def test_a_server_with_a_distilled_query_encoder_equals_rag_search_with_it(start_server, sample_index, query_encoder,
                                                                           tmp_path, capsys):
    # Given a server whose queries go through the distilled 2-layer query encoder on ONNX int8
    pytest.importorskip("onnxruntime")
    extra = ("--encoder-backend", "onnx-int8", "--query-encoder", str(query_encoder))
    srv = start_server(tmp_path, [f"sample={sample_index}"], extra=extra)
    queries = ["rotating storage for search engines", "vaccines and antibodies"]
    try:
        with srv.client() as c:
            http = {q: c.post("/search", json={"query": q, "k": 5, "mode": "hybrid"}).json()["hits"] for q in queries}
    finally:
        srv.stop()
    for q in queries:
        assert main(["search", "--index", str(sample_index), "--mode", "hybrid", "-k", "5", "--json", *extra, q]) == 0
        # Then ids and scores equal the CLI's with the same query encoder and backend
        assert http[q] == json.loads(capsys.readouterr().out)["hits"]


def test_serve_refuses_a_query_encoder_not_distilled_from_the_index_encoder(sample_index, query_encoder, tmp_path, capsys):
    # Given a copy of the student that claims another teacher
    other = tmp_path / "other"
    shutil.copytree(query_encoder, other)
    record = json.loads((other / "query_encoder.json").read_text())
    record["teacher"]["dim"] = 768
    (other / "query_encoder.json").write_text(json.dumps(record))

    # When / Then: rag serve stops before listening, naming the index
    assert main(["serve", "--index", f"sample={sample_index}", "--query-encoder", str(other)]) == 1
    err = capsys.readouterr().err
    assert "--index sample" in err and "dim 768" in err and "would not match" in err


def test_micro_batched_and_batch_scores_are_bit_identical_to_rag_search(server, sample_index, capsys):
    # Given the CLI's dense and hybrid hits for queries of different lengths, each searched alone
    queries = ["why is the sky blue", "vaccines", "how do hard disk drives store data", "black holes and light",
               "why is the sea blue", "herd immunity threshold of a contagious disease"]
    expected = {}
    for mode in ("dense", "hybrid"):
        for q in queries:
            assert main(["search", "--index", str(sample_index), "--mode", mode, "-k", "3", "--json", q]) == 0
            expected[mode, q] = json.loads(capsys.readouterr().out)["hits"]
    with server.client() as c:

        def ask(job):
            mode, q = job
            return c.post("/search", json={"query": q, "k": 3, "mode": mode}).json()["hits"]

        # When all are sent at once (they share micro-batches) and as one /search/batch per mode
        with ThreadPoolExecutor(len(expected)) as pool:
            got = dict(zip(expected, pool.map(ask, list(expected))))
        batches = {mode: c.post("/search/batch", json={"queries": queries, "k": 3, "mode": mode}).json()["results"]
                   for mode in ("dense", "hybrid")}
    # Then every hit equals the CLI's, scores bit for bit
    assert got == expected
    for mode, results in batches.items():
        assert [r["hits"] for r in results] == [expected[mode, q] for q in queries]
