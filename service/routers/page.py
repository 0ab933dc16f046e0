"""``GET /``: the search-and-ask page, and ``/static/…``: its stylesheet and script.

One HTML file, one CSS file and one script shipped in the package (``service/static``), no
build step and nothing loaded from another host. The page calls the same REST API as any client
(``GET /indexes``, ``POST /search`` with ``highlight``, ``POST /answer`` with ``stream``), so it
needs no route of its own beyond these files. It is served without an API key (it holds no data);
the API calls it makes ask for the key when the server requires one.
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
async def page() -> HTMLResponse:
    """The page (read per request: it is small, and this keeps imports free of file reads)."""
    html = files("service").joinpath("static", "index.html").read_text(encoding="utf-8")
    # A strict policy: the page may load and call its own origin only.
    csp = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
           "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
    return HTMLResponse(html, headers={"Content-Security-Policy": csp, "Cache-Control": "no-cache"})


def install_page(app: FastAPI) -> None:
    """Add ``GET /`` and the ``/static`` files to ``app``."""
    app.include_router(router)
    app.mount("/static", StaticFiles(packages=[("service", "static")]), name="static")
