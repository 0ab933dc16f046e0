"""The application factory :func:`create_app` and its lifespan.

Start-up reads every index manifest (a bad path stops the server before it listens), then loads
the encoders and retrievers in a background thread while ``/healthz`` already answers and
``/readyz`` reports 503 until they are ready. Shut-down (SIGTERM/SIGINT under uvicorn) stops
accepting connections, lets in-flight requests finish (up to ``--graceful-timeout``), then stops
the encoder threads and closes the passage stores.

Example:
    (Not run as a doctest: needs an index on disk; starts a server.)
    >>> app = create_app(Settings(indexes={"scifact": "build/scifact"}))   # doctest: +SKIP
    >>> uvicorn.run(app, host="127.0.0.1", port=8000)                     # doctest: +SKIP

``uvicorn --factory service.app:create_app`` builds the settings from ``RAG_*`` variables.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import Depends, FastAPI
from fastapi_offline import FastAPIOffline

from service.errors import install_error_handlers
from service.observability import Metrics, ObservabilityMiddleware, configure_logging
from service.routers import answer, documents, health, indexes, metrics, search
from service.routers.page import install_page
from service.schemas import request_models
from service.security import BodyLimitMiddleware, api_key_dependency
from service.settings import Settings
from service.state import ServiceState

DESCRIPTION = """Search indexes built by `rag index` (BM25, dense, hybrid) and answer questions with
citations. Errors are `{"error": {"code", "message"}}`. With `RAG_API_KEY` set, send
`Authorization: Bearer <key>` (not needed for `/healthz`, `/readyz`, `/openapi.json`, `/docs`, nor for the
search page at `/`, which asks for the key when its API calls need it)."""


def create_app(settings: Settings | None = None) -> FastAPI:
    """A FastAPI app serving the indexes named in ``settings`` (default: from ``RAG_*`` variables).

    Args:
        settings: the service configuration; nothing is loaded until the app starts.
    """
    settings = settings if settings is not None else Settings()
    metrics_ = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging()
        state = ServiceState(settings, on_batch=metrics_.batch_size.observe)
        state.open()  # raises: uvicorn reports the error and exits before binding the port
        app.state.service = state
        app.state.limiter = anyio.CapacityLimiter(settings.threads)
        loader = threading.Thread(target=state.load, name="rag-loader", daemon=True)
        loader.start()
        try:
            yield
        finally:
            loader.join()
            state.close()

    # FastAPIOffline: /docs (Swagger UI) and /redoc from assets shipped in the fastapi-offline
    # package instead of a CDN, so they work offline; no spec validator on another host either.
    app = FastAPIOffline(title="rag-toolkit", version="0.1.0", description=DESCRIPTION, lifespan=lifespan,
                         static_url="/static-docs", swagger_ui_parameters={"validatorUrl": None})
    app.state.metrics = metrics_
    app.state.settings = settings
    install_error_handlers(app)

    guarded = [Depends(api_key_dependency(settings.api_key.get_secret_value()))] if settings.api_key else []
    models = request_models(settings)
    app.include_router(health.router)
    install_page(app)  # GET / and /static: the search page (open; its API calls carry the key)
    for router in (search.build_router(models), answer.build_router(models), indexes.router, documents.router, metrics.router):
        app.include_router(router, dependencies=guarded)

    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins),
                           allow_methods=["GET", "POST", "PUT", "DELETE"] if settings.writable else ["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type", "X-Request-ID"])
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes, timeout_s=settings.body_timeout_s)
    app.add_middleware(ObservabilityMiddleware, metrics=metrics_)  # outermost: sees every status
    return app
