"""``GET /metrics``: Prometheus text exposition (request counts, latency histograms, batch sizes)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from service.errors import error_responses

router = APIRouter(tags=["metrics"])


@router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}},
                                                            **error_responses(401)},
            summary="Prometheus metrics")
async def metrics(request: Request) -> Response:
    """Counters and histograms per route and search mode (see :mod:`service.observability`)."""
    return Response(request.app.state.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
