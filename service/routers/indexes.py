"""``GET /indexes`` and ``GET /indexes/{name}``: manifest facts of the served indexes.

These read only the manifests, so they answer while the models are still loading.
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from indexes.errors import IndexNotFoundError
from service.dependencies import State, tag
from service.errors import error_responses
from service.schemas import IndexInfo, IndexList
from service.state import LoadedIndex

router = APIRouter(tags=["indexes"])


def index_info(entry: LoadedIndex) -> dict:
    """The public facts of one index (never its path)."""
    m = entry.manifest
    bm25 = None
    if m.bm25:
        bm25 = {**m.bm25.params.model_dump(), "analyzer": m.bm25.analyzer.model_dump(),
                "vocabulary": m.bm25.vocabulary, "avgdl": m.bm25.avgdl}
    return {"name": entry.name, "modes": entry.modes, "documents": m.corpus.documents, "passages": m.corpus.passages,
            "created_at": m.created_at, "encoder": m.dense.encoder.model if m.dense else None,
            "dim": m.dense.encoder.dim if m.dense else None, "faiss": m.dense.backend.kind if m.dense else None,
            "backend": (m.dense.backend.library if m.dense.backend.library != "faiss" else m.dense.backend.kind) if m.dense else None,
            "bm25": bm25}


@router.get("/indexes", response_model=IndexList, responses=error_responses(401), summary="List the served indexes")
async def list_indexes(state: State) -> dict:
    """Every configured index, by name, and the default one."""
    return {"indexes": [index_info(e) for e in state.indexes.values()], "default": state.settings.default_index}


@router.get("/indexes/{name}", response_model=IndexInfo, responses=error_responses(401, 404),
            summary="One index's manifest facts")
async def get_index(name: str, request: Request, state: State) -> dict:
    """Counts, encoder and BM25 parameters of the index called ``name``."""
    entry = state.indexes.get(name)
    if entry is None:
        raise IndexNotFoundError(f"index {name!r} is not served here; GET /indexes lists the names")
    tag(request, index=name)
    return index_info(entry)
