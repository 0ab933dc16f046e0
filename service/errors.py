"""Every error leaves the service as ``{"error": {"code", "message"}}`` with a fitting status.

- body fails the schema → 422 ``validation_error``; the message and ``fields`` name the fields;
- a :class:`~indexes.errors.RagError` → its declared ``code`` and the status :data:`STATUS` gives
  that code: ``invalid_input`` (422, with ``fields`` too: :func:`fields_of`), ``index_not_found`` (404), ``not_ready`` and
  ``answer_unavailable`` (503), ...; the table lives here, the storage layer knows no HTTP;
- a body FastAPI cannot even decode (not UTF-8) → 400 ``malformed_body``;
- unknown route or method → 404 ``not_found`` / 405 ``method_not_allowed``;
- missing or wrong API key → 401 ``unauthorized``; body too large → 413 ``payload_too_large``;
  a body that stalls → 408 ``request_timeout``; below the app (:mod:`service.connections`): a
  request head too slow → 408 ``request_timeout``, too long → 431 ``headers_too_large``, one
  connection too many → 503 ``too_many_connections``;
- anything else is a bug → 500 ``internal_error`` with the request id; the traceback goes to the
  log only.

Server paths never reach a client: messages are written by this package, or are ``RagError``
messages in which every served index directory is replaced by the index's name
(:func:`public_message`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from indexes.errors import InputError, RagError

log = logging.getLogger("rag.service")

_CODES = {400: "malformed_body", 401: "unauthorized", 404: "not_found", 405: "method_not_allowed", 408: "request_timeout",
          413: "payload_too_large", 415: "unsupported_media_type", 503: "unavailable"}


def error_response(status: int, code: str, message: str, fields: list[str] | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    """The JSON error body every failure uses."""
    error: dict = {"code": code, "message": message}
    if fields is not None:
        error["fields"] = fields
    return JSONResponse({"error": error}, status_code=status, headers=headers)


#: HTTP status of each declared :attr:`RagError.code <indexes.errors.RagError.code>`.
STATUS: dict[str, int] = {
    "invalid_input": 422,  # the request names a mode, field or value this index cannot serve
    "index_not_found": 404,
    "index_format": 409,  # the served index is damaged or of another format: rebuild it
    "storage_unavailable": 503,  # the server's disk refused a read (full, read-only, permissions)
    "build_in_progress": 409,
    "model_load": 400,
    "onnx_backend": 400,
    "not_ready": 503,
    "answer_unavailable": 503,
    "encoder_closed": 503,  # shutting down
    "read_only": 403,  # PUT/DELETE documents on a server not started writable
}


def field_error(fields: list[str] | tuple[str, ...], message: str) -> InputError:
    """An :class:`InputError` (422) that carries the request fields at fault (its body's ``fields``).

    Example:
        >>> field_error(["temperature"], "temperature needs a decoder-only generator").fields
        ['temperature']
    """
    exc = InputError(message)
    exc.fields = list(fields)
    return exc


#: A message's leading field paths, as this package and :mod:`indexes.filters` write them:
#: ``"filter.year.$gt: ..."``, ``"top_p, seed: ..."``, or one dotted/indexed path then a space:
#: ``"documents[1].metadata.source is a number ..."``.
_PATH = r"[A-Za-z_][\w$]*(?:\[\d+\]|\.[\w$]+)*"
_LEADING_FIELDS = re.compile(rf"^(?:({_PATH}(?:, {_PATH})*):|([A-Za-z_][\w$]*(?:\[\d+\]|\.[\w$]+)+) )")


def fields_of(exc: RagError) -> list[str]:
    """The request fields ``exc`` (a 422) is about: those :func:`field_error` gave it, else the field paths
    its message starts with, else ``["body"]`` (the request as a whole)."""
    given = getattr(exc, "fields", None)
    if given:
        return list(given)
    match = _LEADING_FIELDS.match(str(exc))
    return (match.group(1) or match.group(2)).split(", ") if match else ["body"]


def status_of(exc: RagError) -> int:
    """The HTTP status for ``exc``'s declared code (400 for a code missing from :data:`STATUS`)."""
    return STATUS.get(exc.code, 400)


def public_message(message: str, indexes: Mapping[str, Path]) -> str:
    """``message`` as a client may see it: each served index directory replaced by
    ``index 'NAME'``, any other absolute path shortened to ``…/`` and its last component.

    The file name and what to do stay; the server's directory layout does not leave it.

    Example:
        >>> public_message("/srv/ix/a/bm25_postings.npz: damaged; see /opt/m/e5", {"a": Path("/srv/ix/a")})
        "index 'a'/bm25_postings.npz: damaged; see …/e5"
    """
    spellings = sorted(((str(p), n) for n, p in indexes.items() for p in {Path(p), Path(p).resolve()}),
                       key=lambda item: -len(item[0]))  # longest first: nested paths stay whole
    for path, name in spellings:
        message = message.replace(path, f"index {name!r}")
    return _ABSOLUTE_PATH.sub(r"…/\1", message)


_ABSOLUTE_PATH = re.compile(r"(?<![\w.'])/(?:[^\s/'\"():,;]+/)+([^\s/'\"():,;]*)")


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


def _client_message(request: Request, exc: RagError) -> str:
    """``exc``'s message as the client sees it (:func:`public_message` when the app has settings)."""
    settings = getattr(request.app.state, "settings", None)
    return public_message(str(exc), settings.indexes) if settings is not None else str(exc)


def rag_error_body(exc: RagError, request: Request) -> dict:
    """The error body of ``exc`` without the response (for errors sent inside an event stream):
    the same code and client-facing message as the JSON error response."""
    return {"error": {"code": exc.code, "message": _client_message(request, exc)}}


async def _rag(request: Request, exc: RagError) -> JSONResponse:
    status = status_of(exc)  # every 422 names its fields, as a schema violation does
    return error_response(status, exc.code, _client_message(request, exc), fields_of(exc) if status == 422 else None)


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
