"""``GET /healthz`` (liveness) and ``GET /readyz`` (readiness), open without an API key.

Liveness says the process serves HTTP; readiness says every index and model is loaded, so a
load balancer sends queries only to instances that can answer them. Readiness is 503 while
loading, after a load failure (``detail`` is the error's one-line message: the file and what to
do, with index folders named by index name) and during shutdown.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from service.dependencies import State
from service.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="Liveness")
async def healthz() -> dict:
    """200 whenever the process is serving HTTP."""
    return {"status": "ok"}


@router.get("/readyz", response_model=Health, responses={503: {"model": Health, "description": "Not ready"}},
            summary="Readiness")
async def readyz(state: State) -> JSONResponse:
    """200 once indexes and models are loaded; 503 before, after a failure and while stopping."""
    ready = state.status == "ready"
    body = Health(status=state.status, indexes=list(state.indexes),
                  detail=None if ready else (state.error or "loading indexes and models"))
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)
