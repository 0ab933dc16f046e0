"""Reranking over REST: the hits of ``rag search --rerank`` for the same flags; opt-out; clear 422s."""

from __future__ import annotations

import json

import pytest

from rag.cli import main

QUERY = "why is the sky blue"


@pytest.fixture(scope="module")
def rerank_server(start_server, sample_index, tiny_cross_encoder, tmp_path_factory):
    """The fixture index served with the tiny cross-encoder reranking the top 5."""
    import torch

    extra = ("--torch-threads", str(torch.get_num_threads()), "--rerank", str(tiny_cross_encoder), "--rerank-depth", "5")
    srv = start_server(tmp_path_factory.mktemp("srv-rerank"), [f"sample={sample_index}"], extra=extra)
    yield srv
    srv.stop()


def cli_hits(capsys, index, *extra) -> list[dict]:
    assert main(["search", "--index", str(index), "--mode", "hybrid", "-k", "8", "--json", "--device", "cpu", *extra, QUERY]) == 0
    return json.loads(capsys.readouterr().out)["hits"]


def test_http_reranked_hits_equal_rag_search_rerank(rerank_server, sample_index, tiny_cross_encoder, capsys):
    # Given the CLI's reranked hits at the server's depth (5) and at depth 3, and its plain hits
    at5 = cli_hits(capsys, sample_index, "--rerank", str(tiny_cross_encoder), "--rerank-depth", "5")
    at3 = cli_hits(capsys, sample_index, "--rerank", str(tiny_cross_encoder), "--rerank-depth", "3")
    plain = cli_hits(capsys, sample_index)
    with rerank_server.client() as c:
        # When the service answers by default, with rerank_depth 3, and with rerank off
        default = c.post("/search", json={"query": QUERY, "k": 8, "mode": "hybrid"}).json()["hits"]
        depth3 = c.post("/search", json={"query": QUERY, "k": 8, "mode": "hybrid", "rerank_depth": 3}).json()["hits"]
        off = c.post("/search", json={"query": QUERY, "k": 8, "mode": "hybrid", "rerank": False}).json()["hits"]
        batch = c.post("/search/batch", json={"queries": [QUERY], "k": 8, "mode": "hybrid"}).json()["results"][0]["hits"]
    # Then each equals the CLI with the same flags (scores bit for bit)
    assert default == at5 and batch == at5
    assert depth3 == at3
    assert off == plain
    assert [h["id"] for h in at5] != [h["id"] for h in plain] or at5 != plain  # reranking changed the scores


def test_answer_reranks_its_passages(rerank_server):
    # When /answer runs with the reranker and without it
    with rerank_server.client() as c:
        on = c.post("/answer", json={"question": QUERY, "k": 3})
        off = c.post("/answer", json={"question": QUERY, "k": 3, "rerank": False})
    # Then both succeed; each cites passages of the first stage's top 5
    assert on.status_code == 200 and off.status_code == 200
    assert on.json()["kind"] in ("extractive", "no_answer")


def test_rerank_without_a_reranker_and_a_bad_depth_are_422s(server, rerank_server):
    # When a service without a reranker is asked to rerank
    with server.client() as c:
        r = c.post("/search", json={"query": QUERY, "rerank": True})
        a = c.post("/answer", json={"question": QUERY, "rerank": True})
    # Then it says so, and how to start one
    assert r.status_code == 422 and a.status_code == 422
    assert "--rerank MODEL" in r.json()["error"]["message"]
    # When a depth out of range is asked for
    with rerank_server.client() as c:
        zero = c.post("/search", json={"query": QUERY, "rerank_depth": 0})
        huge = c.post("/search", json={"query": QUERY, "rerank_depth": 10_000})
    # Then the field is named
    assert zero.status_code == 422 and huge.status_code == 422
    assert zero.json()["error"]["fields"] == ["rerank_depth"]


def test_rerank_weight_over_rest_equals_the_cli_and_a_bad_one_is_a_422(rerank_server, sample_index, tiny_cross_encoder, capsys):
    # Given the CLI's hits at the server's depth with α = 0.5, and the first stage's own hits
    half = cli_hits(capsys, sample_index, "--rerank", str(tiny_cross_encoder), "--rerank-depth", "5", "--rerank-weight", "0.5")
    plain = cli_hits(capsys, sample_index)
    with rerank_server.client() as c:
        # When requests set rerank_weight 0.5, 0 (first stage only), and out of range
        r_half = c.post("/search", json={"query": QUERY, "k": 8, "mode": "hybrid", "rerank_weight": 0.5}).json()["hits"]
        r_zero = c.post("/search", json={"query": QUERY, "k": 8, "mode": "hybrid", "rerank_weight": 0}).json()["hits"]
        bad = c.post("/search", json={"query": QUERY, "rerank_weight": 1.5})
        bad_answer = c.post("/answer", json={"question": QUERY, "rerank_weight": -0.2})
        answer = c.post("/answer", json={"question": QUERY, "k": 3, "rerank_weight": 0.5})
    # Then α = 0.5 equals the CLI bit for bit, α = 0 gives the first stage's order, and bad values name the field
    assert r_half == half
    assert [h["id"] for h in r_zero] == [h["id"] for h in plain]
    assert bad.status_code == 422 and bad.json()["error"]["fields"] == ["rerank_weight"]
    assert bad_answer.status_code == 422 and bad_answer.json()["error"]["fields"] == ["rerank_weight"]
    assert answer.status_code == 200


def test_serve_refuses_a_weight_without_a_reranker(capsys, sample_index):
    # a usage error (exit 2), as --rerank-depth without --rerank and on every other command
    assert main(["serve", "--index", f"sample={sample_index}", "--rerank-weight", "0.5"]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and "'--rerank-weight'" in errors[0] and "give --rerank MODEL too" in errors[0]


_BODIES = {"/search": {"query": QUERY}, "/search/batch": {"queries": [QUERY]}, "/answer": {"question": QUERY}}


@pytest.mark.parametrize("route", list(_BODIES))
@pytest.mark.parametrize(("fields", "named"), [({"rerank_weight": 0.5}, ["rerank_weight"]),
                                               ({"rerank_depth": 5}, ["rerank_depth"]),
                                               ({"rerank": True, "rerank_depth": 5}, ["rerank", "rerank_depth"])],
                         ids=["weight", "depth", "rerank-and-depth"])
def test_rerank_fields_on_a_service_without_a_reranker_are_422s_naming_them(server, route, fields, named):
    # Given a service without a reranker
    with server.client() as c:
        # When a request sets a reranking field
        r = c.post(route, json={**_BODIES[route], **fields})
    # Then it is refused like "rerank": true, naming the fields, never silently ignored
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_input" and error["fields"] == named
    assert error["message"].startswith(f"{', '.join(named)}: this service has no reranker")


@pytest.mark.parametrize("route", list(_BODIES))
def test_rerank_fields_with_rerank_false_are_422s_naming_them(rerank_server, route):
    # Given a reranking service
    with rerank_server.client() as c:
        # When a request opts out of reranking yet sets a weight or a depth, or only opts out
        weight = c.post(route, json={**_BODIES[route], "rerank": False, "rerank_weight": 0.3})
        both = c.post(route, json={**_BODIES[route], "rerank": False, "rerank_depth": 3, "rerank_weight": 0.3})
        plain = c.post(route, json={**_BODIES[route], "rerank": False})
    # Then the fields that would be ignored are named; opting out alone is fine
    assert weight.status_code == 422 and weight.json()["error"]["fields"] == ["rerank_weight"]
    assert both.status_code == 422 and both.json()["error"]["fields"] == ["rerank_depth", "rerank_weight"]
    assert "no effect with \"rerank\": false" in both.json()["error"]["message"]
    assert plain.status_code == 200, plain.text
