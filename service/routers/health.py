"""``GET /healthz`` (liveness) and ``GET /readyz`` (readiness), open without an API key.

Liveness says the process serves HTTP; readiness says every index and model is loaded, so a
load balancer sends queries only to instances that can answer them. Readiness is 503 while
loading, after a load failure (``detail`` is the error's one-line message: the file and what to
do, with index folders named by index name) and during shutdown.

Both list the same ``indexes``: the names of the indexes this server is configured to serve, in
configuration order, whatever their load state (an operator's first question to either probe is
"which server is this?"). Whether they can be searched yet is what ``status`` says, never the list.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from service.dependencies import State
from service.schemas import Health

router = APIRouter(tags=["health"])


def _served(request: Request) -> list[str]:
    """The configured index names (the same list on both probes, loaded or not; from the settings
    the app was created with, so liveness depends on nothing being loaded)."""
    return list(request.app.state.settings.indexes)


@router.get("/healthz", response_model=Health, summary="Liveness")
async def healthz(request: Request) -> dict:
    """200 whenever the process is serving HTTP; ``indexes``: the names it serves (as ``/readyz``)."""
    return {"status": "ok", "indexes": _served(request)}


@router.get("/readyz", response_model=Health, responses={503: {"model": Health, "description": "Not ready"}},
            summary="Readiness")
async def readyz(request: Request, state: State) -> JSONResponse:
    """200 once indexes and models are loaded; 503 before, after a failure and while stopping.
    ``indexes``: the names it serves (as ``/healthz``), whatever ``status`` says."""
    ready = state.status == "ready"
    body = Health(status=state.status, indexes=_served(request),
                  detail=None if ready else (state.error or "loading indexes and models"))
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)
