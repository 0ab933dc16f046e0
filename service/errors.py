"""Every error leaves the service as ``{"error": {"code", "message"}}`` with a fitting status.

- body fails the schema → 422 ``validation_error``; the message and ``fields`` name the fields;
- a :class:`~indexes.errors.RagError` → its ``http_status``, code = the class name in snake case
  without ``_error``: ``invalid_input`` (422), ``index_not_found`` (404), ``not_ready`` and
  ``answer_unavailable`` (503);
- a body FastAPI cannot even decode (not UTF-8) → 400 ``malformed_body``;
- unknown route or method → 404 ``not_found`` / 405 ``method_not_allowed``;
- missing or wrong API key → 401 ``unauthorized``; body too large → 413 ``payload_too_large``;
- anything else is a bug → 500 ``internal_error`` with the request id; the traceback goes to the
  log only.

Server paths never reach a client: messages are written by this package or by ``RagError``
subclasses raised with index *names*.
"""

from __future__ import annotations

import logging
import re

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from indexes.errors import RagError

log = logging.getLogger("rag.service")

_CODES = {400: "malformed_body", 401: "unauthorized", 404: "not_found", 405: "method_not_allowed", 413: "payload_too_large",
          415: "unsupported_media_type", 503: "unavailable"}


def error_response(status: int, code: str, message: str, fields: list[str] | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    """The JSON error body every failure uses."""
    error: dict = {"code": code, "message": message}
    if fields is not None:
        error["fields"] = fields
    return JSONResponse({"error": error}, status_code=status, headers=headers)


def _code(exc: RagError) -> str:
    """``IndexNotFoundError`` → ``index_not_found``; ``InputError`` → ``invalid_input``."""
    name = re.sub(r"(?<!^)(?=[A-Z])", "_", type(exc).__name__).lower().removesuffix("_error")
    return "invalid_input" if name == "input" else name


def _field(loc: tuple) -> str:
    parts = [str(p) for p in loc if p != "body"]
    return ".".join(parts) or "body"


async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    fields = [_field(tuple(e.get("loc", ()))) for e in errors]
    msgs = [f"{f}: {e.get('msg', 'invalid')}" for f, e in zip(fields, errors)]
    if any(e.get("type") == "json_invalid" for e in errors):
        msgs = ["the body is not valid JSON; send a JSON object with Content-Type: application/json"]
    return error_response(422, "validation_error", "; ".join(msgs[:5]) or "invalid request", fields)


def rag_error_body(exc: RagError) -> dict:
    """The error body of ``exc`` without the response (for errors sent inside an event stream)."""
    return {"error": {"code": _code(exc), "message": str(exc)}}


async def _rag(request: Request, exc: RagError) -> JSONResponse:
    return error_response(exc.http_status, _code(exc), str(exc))


async def _http(request: Request, exc: HTTPException) -> JSONResponse:
    code = _CODES.get(exc.status_code, f"http_{exc.status_code}")
    return error_response(exc.status_code, code, str(exc.detail), headers=getattr(exc, "headers", None))


async def _internal(request: Request, exc: Exception) -> JSONResponse:
    rid = request.scope.get("state", {}).get("request_id", "?")
    log.error("unhandled error in request %s", rid, exc_info=exc)
    return error_response(500, "internal_error", f"internal error (request id {rid}); the log has the details")


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers above on ``app``."""
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(RagError, _rag)
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(Exception, _internal)


#: OpenAPI ``responses`` entry documenting the error body for the given statuses.
def error_responses(*statuses: int) -> dict[int, dict]:
    from service.schemas import ErrorBody

    text = {400: "Body is not decodable (not UTF-8 JSON)", 401: "Missing or wrong API key", 404: "Unknown index", 413: "Body too large",
            422: "Invalid request (the message names the field)", 503: "Not ready, or the pipeline cannot run"}
    return {s: {"model": ErrorBody, "description": text.get(s, "Error")} for s in statuses}
