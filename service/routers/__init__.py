"""Routers, one module per resource; each exposes ``router`` or ``build_router(...)``.

Modules: ``search`` (``POST /search``, ``/search/batch``), ``answer`` (``POST /answer``),
``indexes`` (``GET /indexes``, ``/indexes/{name}``), ``documents`` (``PUT``/``DELETE
/indexes/{name}/documents``, when writable), ``health`` (``/healthz``, ``/readyz``) 
``metrics`` (``GET /metrics``) and ``page`` (``GET /``: the search-and-ask page, and its static files).
"""
