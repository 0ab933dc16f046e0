"""Routers, one module per resource; each exposes ``router`` or ``build_router(...)``."""
