"""Request bodies are typed strictly, and every 422 has the same shape: ``code``, ``message``, ``fields``."""

from __future__ import annotations

import pytest

from service.schemas import request_models
from service.settings import Settings

QUERY = "why is the sky blue"
_BODIES = {"/search": {"query": QUERY}, "/search/batch": {"queries": [QUERY]}, "/answer": {"question": QUERY}}


@pytest.mark.parametrize(("route", "extra", "field"), [
    ("/search", {"k": True}, "k"),
    ("/search", {"k": "5"}, "k"),
    ("/search", {"rerank_weight": True}, "rerank_weight"),
    ("/search", {"rerank_weight": "0.3"}, "rerank_weight"),
    ("/search", {"rerank_depth": 5.0}, "rerank_depth"),
    ("/search", {"highlight": "yes"}, "highlight"),
    ("/search/batch", {"k": True}, "k"),
    ("/search/batch", {"rerank": 1}, "rerank"),
    ("/answer", {"temperature": "0.5"}, "temperature"),
    ("/answer", {"max_new_tokens": True}, "max_new_tokens"),
    ("/answer", {"stream": 1}, "stream"),
    ("/answer", {"fusion": {"method": "rag-token", "temperature": True}}, "fusion.temperature"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_a_bool_or_string_where_a_number_is_expected_is_a_422_naming_the_field(server, route, extra, field):
    # Given a body with a value of the wrong JSON type (that lax parsing would coerce)
    with server.client() as c:
        # When
        r = c.post(route, json={**_BODIES[route], **extra})
    # Then a validation error naming the field
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "validation_error" and r.json()["error"]["fields"] == [field]


def test_request_models_take_json_integers_for_floats_and_nothing_else():
    # Given the request models of the default settings
    models = request_models(Settings())
    # When an integer fills a float field
    search = models.search.model_validate({"query": QUERY, "rerank_weight": 1})
    answer = models.answer.model_validate({"question": QUERY, "temperature": 0, "fusion": {"method": "rag-token",
                                                                                          "temperature": 2}})
    # Then it is that float; a bool or a numeric string is not
    assert search.rerank_weight == 1.0 and isinstance(search.rerank_weight, float)
    assert answer.temperature == 0.0 and answer.fusion.temperature == 2.0
    for bad in (True, "1", "0.3"):
        with pytest.raises(ValueError, match="rerank_weight"):
            models.search.model_validate({"query": QUERY, "rerank_weight": bad})


@pytest.mark.parametrize(("extra", "fields"), [({"temperature": 0.5}, ["temperature"]),
                                               ({"max_new_tokens": 8}, ["max_new_tokens"]),
                                               ({"top_p": 0.9, "seed": 1}, ["top_p", "seed"]),
                                               ({"filter": {"no_such_field": 1}}, ["filter"])],
                         ids=["temperature", "max_new_tokens", "top_p-seed", "filter"])
def test_invalid_input_422s_carry_the_fields_like_validation_errors(server, extra, fields):
    # Given an extractive service (no generator)
    with server.client() as c:
        # When a request sets a field this service cannot serve
        r = c.post("/answer", json={"question": QUERY, **extra})
    # Then the 422 has the same shape as a schema violation: code, message and the field paths
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert set(error) == {"code", "message", "fields"}
    assert error["code"] == "invalid_input" and error["fields"] == fields


def test_a_mode_the_index_lacks_is_a_422_naming_mode(plain_server):
    # Given a BM25-only index
    with plain_server.client() as c:
        # When dense search is asked for
        r = c.post("/search", json={"query": QUERY, "mode": "dense"})
    # Then
    assert r.status_code == 422 and r.json()["error"]["fields"] == ["mode"]


def test_fields_of_reads_the_leading_field_paths_of_a_message():
    from indexes.errors import InputError
    from service.errors import field_error, fields_of

    # When / Then: given fields win; else the message's leading path(s); else the body as a whole
    assert fields_of(field_error(["evict"], "x: y")) == ["evict"]
    assert fields_of(InputError("filter.year.$gt: expected a number")) == ["filter.year.$gt"]
    assert fields_of(InputError("top_p, seed: need a causal LM")) == ["top_p", "seed"]
    assert fields_of(InputError("documents[1].metadata.source is a number (7)")) == ["documents[1].metadata.source"]
    assert fields_of(InputError("this service has no such thing")) == ["body"]
