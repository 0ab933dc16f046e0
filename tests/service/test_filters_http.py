"""``filter`` in REST search, batch search and answer requests: same hits as ``rag search --filter``, 422s naming the field."""

from __future__ import annotations

import json

import pytest

from rag.cli import main

DOCS = [
    {"_id": "s1", "text": "the sky is blue because air scatters blue light", "year": 2001, "source": "wiki"},
    {"_id": "s2", "text": "blue sky blue light scattering by air molecules", "year": 2012, "source": "paper"},
    {"_id": "s3", "text": "red sky at sunset light travels through more air", "year": 2018, "source": "paper"},
    {"_id": "o1", "text": "the ocean is blue as water absorbs red light", "year": 2020, "source": "wiki"},
]


@pytest.fixture(scope="module")
def meta_server(tmp_path_factory, start_server):
    """A BM25-only server over four documents with year/source metadata (no API key)."""
    work = tmp_path_factory.mktemp("meta-srv")
    (work / "c.jsonl").write_text("".join(json.dumps(d) + "\n" for d in DOCS))
    assert main(["index", str(work / "c.jsonl"), "--out", str(work / "meta"), "--no-dense"]) == 0
    srv = start_server(work, [f"meta={work / 'meta'}"])
    yield srv, work / "meta"
    srv.stop()


def test_filtered_search_equals_the_cli(meta_server, capsys):
    srv, index = meta_server
    f = {"$or": [{"year": {"$lt": 2005}}, {"source": "paper", "year": {"$gte": 2015}}]}
    # Given the CLI's filtered hits
    assert main(["search", "--index", str(index), "--mode", "bm25", "-k", "3", "--json", "--filter", json.dumps(f), "blue sky light"]) == 0
    cli = json.loads(capsys.readouterr().out)["hits"]
    with srv.client() as c:
        # When the service searches with the same filter, alone and in a batch
        one = c.post("/search", json={"query": "blue sky light", "k": 3, "mode": "bm25", "filter": f})
        batch = c.post("/search/batch", json={"queries": ["blue sky light", "ocean"], "k": 3, "mode": "bm25", "filter": f})
    # Then: the same hits (s1 and s3 only), and the batch's second query finds no allowed passage with "ocean"
    assert one.status_code == 200 and batch.status_code == 200
    assert one.json()["hits"] == cli and {h["id"] for h in cli} == {"s1", "s3"}
    assert batch.json()["results"][0]["hits"] == cli and batch.json()["results"][1]["hits"] == []


@pytest.mark.parametrize(("route", "body"), [
    ("/search", {"query": "sky", "mode": "bm25"}),
    ("/search/batch", {"queries": ["sky"], "mode": "bm25"}),
])
@pytest.mark.parametrize(("f", "message"), [
    ({"yr": 2001}, "filter: unknown metadata field 'yr'"),
    ({"year": "2001"}, "filter: field 'year' holds numbers, not strings"),
    ({"year": {"$regex": "2.*"}}, "filter.year: unknown operator '$regex'"),
    ({"year": {"$in": []}}, "filter.year.$in: expected a non-empty list"),
])
def test_bad_filters_are_422_naming_the_field(meta_server, route, body, f, message):
    srv, _ = meta_server
    # When a request carries a filter the index cannot evaluate
    with srv.client() as c:
        r = c.post(route, json=body | {"filter": f})
    # Then: 422 invalid_input with a message naming the field
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "invalid_input" and message in r.json()["error"]["message"]


def test_filter_that_is_not_an_object_fails_the_schema(meta_server):
    srv, _ = meta_server
    with srv.client() as c:
        r = c.post("/search", json={"query": "sky", "mode": "bm25", "filter": "year > 2000"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error" and "filter" in r.json()["error"]["fields"]


def test_answer_takes_the_filter(server):
    # Given the sample server (extractive answers), where every document's source is "rag-toolkit sample"
    with server.client() as c:
        # When: answers with a filter all documents satisfy, none does, and an unknown field (also when streamed)
        ok = c.post("/answer", json={"question": "why is the sky blue", "k": 3, "filter": {"source": "rag-toolkit sample"}})
        none = c.post("/answer", json={"question": "why is the sky blue", "k": 3, "filter": {"source": {"$in": ["x"]}}})
        bad = c.post("/answer", json={"question": "why is the sky blue", "filter": {"lang": "en"}})
        bad_stream = c.post("/answer", json={"question": "why is the sky blue", "filter": {"lang": "en"}, "stream": True})
    # Then: citations only when passages pass the filter; 422s before any streaming starts
    assert ok.status_code == 200 and ok.json()["citations"]
    assert none.status_code == 200 and none.json()["kind"] == "no_answer" and none.json()["citations"] == []
    for r in (bad, bad_stream):
        assert r.status_code == 422 and "unknown metadata field 'lang'" in r.json()["error"]["message"]
