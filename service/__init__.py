"""The REST service: ``rag/`` retrieval and answering over HTTP (FastAPI).

Build an app with :func:`service.app.create_app` and a :class:`service.settings.Settings`;
``rag serve`` does both and runs it under uvicorn. Importing this package does nothing else.
"""
