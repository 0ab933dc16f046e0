"""The REST service: ``rag/`` retrieval and answering over HTTP (FastAPI).

Build an app with :func:`service.app.create_app` and a :class:`service.settings.Settings`;
``rag serve`` does both and runs it under uvicorn. Importing this package does nothing else.

Modules:
    app: the application factory and its lifespan.
    settings: the one configuration object (``RAG_*`` environment variables).
    state: what is loaded once and shared (indexes, encoders, the generator).
    dependencies: typed FastAPI dependencies.
    schemas: request and response bodies.
    errors: every error as ``{"error": {"code", "message"}}`` with its status.
    security: API key and request limits.
    connections: connection-level limits (open connections, request-head size and time).
    streaming: ``POST /answer`` as Server-Sent Events.
    observability: request logs and Prometheus metrics.
    batching: concurrent query encodings merged into one encoder call.
    passages: an in-memory cache in front of the passage store.

Sub-package ``routers``: one module per resource (search, answer, indexes, health, metrics, page: the browser page).
"""
