"""Errors are JSON ``{"error": {"code", "message"}}``; auth, size and range limits hold."""

from __future__ import annotations

import pytest


def error_of(r) -> dict:
    body = r.json()
    assert set(body) == {"error"} and {"code", "message"} <= set(body["error"])
    return body["error"]


@pytest.mark.parametrize("authorization", ["", "Bearer wrong", "Basic {key}", "Bearer {key}x", "bearer{key}"])
def test_api_routes_need_the_key(server, api_key, authorization):
    # When a request comes without the right bearer token
    headers = {"Authorization": authorization.format(key=api_key)}
    r = server.client().post("/search", json={"query": "sky"}, headers=headers)
    # Then
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert error_of(r)["code"] == "unauthorized"


def test_probes_and_schema_need_no_key(server):
    # Given a client without the key
    import httpx

    # When / Then
    for path in ("/healthz", "/readyz", "/openapi.json"):
        assert httpx.get(server.url + path).status_code == 200
    assert httpx.get(server.url + "/metrics").status_code == 401


@pytest.mark.parametrize(("body", "field"), [
    ({"query": "", "k": 3}, "query"),
    ({"query": "   "}, "query"),
    ({"query": "x" * 1001}, "query"),
    ({"query": "sky", "k": 0}, "k"),
    ({"query": "sky", "k": 101}, "k"),
    ({"query": "sky", "mode": "sparse"}, "mode"),
    ({"query": "sky", "index": "../etc"}, "index"),
    ({"query": "sky", "extra": 1}, "extra"),
    ({"k": 3}, "query"),
])
def test_invalid_search_bodies_are_422_naming_the_field(server, body, field):
    # When
    r = server.client().post("/search", json=body)
    # Then
    err = error_of(r)
    assert r.status_code == 422 and err["code"] == "validation_error"
    assert field in err["fields"] and field in err["message"]


def test_batch_size_is_bounded(server):
    # When 65 queries come in one batch (max_batch = 64)
    r = server.client().post("/search/batch", json={"queries": ["sky"] * 65})
    # Then
    assert r.status_code == 422 and error_of(r)["fields"] == ["queries"]


def test_unknown_index_is_404(server):
    r = server.client().post("/search", json={"query": "sky", "index": "nope"})
    assert r.status_code == 404 and error_of(r)["code"] == "index_not_found"
    r = server.client().get("/indexes/nope")
    assert r.status_code == 404 and error_of(r)["code"] == "index_not_found"


def test_mode_the_index_lacks_is_422(plain_server):
    r = plain_server.client().post("/search", json={"query": "sky", "mode": "dense"})
    assert r.status_code == 422 and error_of(r)["code"] == "invalid_input" and "bm25" in error_of(r)["message"]


def test_bodies_over_the_limit_are_413(server):
    # Given a body over max_body_bytes (256 KiB), declared and then streamed without a length
    big = b'{"query": "' + b"x" * 300_000 + b'"}'

    def chunks():
        for i in range(0, len(big), 65536):
            yield big[i : i + 65536]

    with server.client() as c:
        # When
        declared = c.post("/search", content=big, headers={"Content-Type": "application/json"})
        streamed = c.post("/search", content=chunks(), headers={"Content-Type": "application/json"})
    # Then
    for r in (declared, streamed):
        assert r.status_code == 413 and error_of(r)["code"] == "payload_too_large"


def test_malformed_json_unknown_route_and_method(server):
    with server.client() as c:
        bad = c.post("/search", content=b'{"query": ', headers={"Content-Type": "application/json"})
        missing = c.get("/nope")
        method = c.get("/search")
    assert bad.status_code == 422 and "JSON" in error_of(bad)["message"]
    assert missing.status_code == 404 and error_of(missing)["code"] == "not_found"
    assert method.status_code == 405 and error_of(method)["code"] == "method_not_allowed"


def test_answer_without_encoder_or_generator_is_a_clear_503(plain_server):
    # When the BM25-only index is asked for an answer and no generator is configured
    r = plain_server.client().post("/answer", json={"question": "why is the sky blue", "mode": "bm25"})
    # Then a 503 body says why and what to do, instead of a crash or a made-up answer
    err = error_of(r)
    assert r.status_code == 503 and err["code"] == "answer_unavailable"
    assert "generator" in err["message"] and "answer" not in r.json()


@pytest.mark.parametrize(("origins", "allowed"), [((), None), (("https://app.example",), "https://app.example")])
def test_cors_is_off_unless_configured(origins, allowed):
    # Given an app (in process, no index needed) with or without allowed origins
    from fastapi.testclient import TestClient

    from service.app import create_app
    from service.settings import Settings

    with TestClient(create_app(Settings(cors_origins=origins))) as c:
        # When a browser sends a preflight request
        r = c.options("/search", headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"})
    # Then only a configured origin is allowed
    assert r.headers.get("access-control-allow-origin") == allowed
