"""``PUT`` and ``DELETE /indexes/{name}/documents``: upsert and delete documents of a served index.

Served only when the server runs with ``writable`` (``RAG_WRITABLE=1``, ``rag serve --writable``),
behind the API key when one is set, with the body limit of every route. Each request is one
commit (:mod:`rag.live`); the response comes once it is published and this process serves it,
and every other worker opens it on its next request (:meth:`service.state.ServiceState.get`).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from indexes.errors import IndexNotFoundError, RagError
from service.dependencies import State, run_blocking, tag
from service.errors import error_responses

router = APIRouter(tags=["documents"])


class ReadOnlyError(RagError):
    """The server was not started writable."""

    code = "read_only"


class DocumentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, description="Document id; an existing document with this id is replaced whole.")
    title: str = ""
    text: str = Field(min_length=1)
    metadata: dict[str, Any] = Field(default_factory=dict)


class UpsertRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    documents: list[DocumentIn] = Field(min_length=1)


class DeleteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ids: list[Annotated[str, Field(min_length=1)]] = Field(min_length=1)


class UpdateResult(BaseModel):
    """One commit's changes (see ``rag.live_report.UpdateReport``)."""

    generation: int
    added: int
    replaced: int
    deleted: int
    not_found: list[str]
    passages_added: int
    passages_deleted: int
    segments: int
    unchanged: int = Field(0, description="Upserted documents identical to the stored ones (same id, title, text and "
                           "metadata): not rewritten, as Elasticsearch's `detect_noop`.")
    committed: bool = Field(description="A new commit was published; false when nothing changed (every id to delete "
                            "was unknown, every upserted document unchanged): `generation` is then the commit the index is still at.")
    notes: list[str] = Field(default_factory=list, description="Cached generator states the change could not carry "
                             "whole (KV blocks left to question time, LUMEN memory dropped), each with the command that restores it.")


def _entry(state, name: str):
    if not state.settings.writable:
        raise ReadOnlyError("this server is read-only: start it writable (RAG_WRITABLE=1) to change indexes")
    if name not in state.settings.indexes:
        raise IndexNotFoundError(f"index {name!r} is not served here; GET /indexes lists the names")
    return state.get(name)


def _report(r) -> dict:
    return {k: getattr(r, k) for k in UpdateResult.model_fields}


def _documents(body: UpsertRequest) -> list:
    """The request's documents for :func:`rag.live.upsert_documents`, checked as the corpus readers
    check records; each error names the document's JSON path (``documents[2].id``), never a CLI option.

    Raises:
        InputError: a duplicate id, a document without text or title, a lone surrogate in a string.
    """
    from indexes.errors import InputError
    from rag.corpus import Document
    from rag.textfile import check_unicode

    seen: dict[str, int] = {}
    out = []
    for i, d in enumerate(body.documents):
        at = f"documents[{i}]"
        if d.id in seen:
            raise InputError(f"{at}.id: duplicate id {d.id!r} (also documents[{seen[d.id]}]); "
                             "send each document once per request")
        seen[d.id] = i
        if not d.text.strip() and not d.title.strip():
            raise InputError(f"{at}.text: only whitespace and no title; send the document's text")
        check_unicode([d.id, d.title, d.text, d.metadata], at)
        out.append(Document(d.id, d.title, d.text, dict(d.metadata), where=at))
    return out


def _json_path(where: str, field: str) -> str:
    """The subject of a metadata type error in a request: ``documents[2].metadata.year``."""
    return f"{where}.metadata.{field}"


@router.put("/indexes/{name}/documents", response_model=UpdateResult, responses=error_responses(401, 403, 404, 409, 413, 422),
            summary="Upsert documents (one commit)")
async def upsert_documents(name: str, body: UpsertRequest, request: Request, state: State) -> dict:
    """Add documents, replacing any existing document with the same id (all its passages).

    Each metadata value must be of a type its field holds in the index (a field new to the index
    takes the types it arrives with; ints and floats are both numbers, ``true`` is not): otherwise
    422 naming ``documents[i].metadata.FIELD``, and nothing is written. Ids must be unique within
    a request (422 naming ``documents[i].id``).
    """
    from indexes.errors import InputError
    from rag.live import upsert_documents

    tag(request, index=name)
    entry = _entry(state, name)
    if len(body.documents) > state.settings.max_upsert_documents:
        raise InputError(f"documents: at most {state.settings.max_upsert_documents} per request, got {len(body.documents)}")
    documents = _documents(body)
    encoder = getattr(getattr(entry.index, "_encoder", None), "encoder", None)

    def run() -> dict:
        with state.write_lock(name):
            report = upsert_documents(state.settings.indexes[name], documents, where="documents", locate=_json_path,
                                      encoder=encoder, progress=False)
        state.get(name)  # serve the new commit in this process before answering
        return _report(report)

    return await run_blocking(request, run)


@router.delete("/indexes/{name}/documents", response_model=UpdateResult, responses=error_responses(401, 403, 404, 409, 413, 422),
               summary="Delete documents (one commit)")
async def delete_documents(name: str, body: DeleteRequest, request: Request, state: State) -> dict:
    """Delete documents by id; ids the index does not hold are listed in ``not_found``."""
    from rag.live import delete_documents as delete

    tag(request, index=name)
    _entry(state, name)

    def run() -> dict:
        with state.write_lock(name):
            report = delete(state.settings.indexes[name], body.ids)
        state.get(name)
        return _report(report)

    return await run_blocking(request, run)
