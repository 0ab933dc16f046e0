"""Property-based fuzzing against the server's own OpenAPI document (schemathesis 4).

For ``/search``, ``/search/batch``, ``/indexes`` and ``/indexes/{name}`` schemathesis generates
valid (positive) and invalid (negative) requests from the schema; every response must be
documented (status, content type, body schema) and none may be a 5xx. Bounded: a few dozen
examples per operation and mode, no shrinking.

The schema is loaded inside the test from the running server with the public
``schemathesis.openapi.from_url`` and driven by ``@given(op.as_strategy(...))``; the pytest
plugin's ``from_fixture`` reads a private pytest attribute that pytest 9 no longer has.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
OPERATIONS = [("/search", "POST"), ("/search/batch", "POST"), ("/indexes", "GET"), ("/indexes/{name}", "GET")]


@pytest.fixture(scope="session")
def api_schema(server):
    return schemathesis.openapi.from_url(server.url + "/openapi.json")


@pytest.mark.parametrize("generation", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
@pytest.mark.parametrize(("path", "method"), OPERATIONS, ids=[f"{m} {p}" for p, m in OPERATIONS])
def test_no_server_errors_and_responses_match_the_schema(api_schema, server, path, method, generation):
    # Given the operation as the server documents it
    operation = api_schema[path][method]

    @given(case=operation.as_strategy(generation_mode=generation))
    @settings(max_examples=25, deadline=None, phases=[Phase.explicit, Phase.generate], database=None,
              suppress_health_check=list(HealthCheck))
    def check(case):
        # When it is called / Then the response conforms and is not a server error
        case.call_and_validate(headers=server.headers, checks=CHECKS)

    check()
