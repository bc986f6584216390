"""The browser page: ``GET /`` serves it to browsers, ``/static/...`` serves its assets.

Programs that ``GET /`` (curl, scripts: no ``text/html`` in Accept) get a short hint instead,
as plain text or JSON, so the course's ``POST /`` API keeps its plain-text feel.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).with_name("static")
INDEX_HTML = STATIC_DIR / "index.html"

_HINT = {
    "service": "imgrec",
    "classify": "POST an image as multipart/form-data to / (field 'myfile') for "
    "'<name>:<label>', or to /api/v1/classify (field 'file') for JSON.",
    "page": "Open this address in a web browser to upload photos.",
    "docs": "/docs",
}
# The page and its assets change with every release; revalidating (ETag) keeps them fresh.
_NO_STORE = {"Cache-Control": "no-cache"}


def wants_html(accept: str) -> bool:
    """Whether an Accept header asks for a web page (browsers send ``text/html`` first)."""
    return "text/html" in accept.lower()


def wants_json(accept: str) -> bool:
    return "application/json" in accept.lower()


def index(request: Request) -> Response:
    """The page for browsers; a short hint in plain text or JSON for everyone else."""
    accept = request.headers.get("accept", "")
    if wants_html(accept):
        return FileResponse(INDEX_HTML, media_type="text/html; charset=utf-8", headers=_NO_STORE)
    if wants_json(accept):
        return JSONResponse(_HINT)
    lines = [f"imgrec: {_HINT['classify']}", _HINT["page"], f"API docs: {_HINT['docs']}"]
    return PlainTextResponse("\n".join(lines) + "\n")


class _StaticFiles(StaticFiles):
    """Static files that browsers revalidate instead of caching stale copies across upgrades."""

    def file_response(self, *args: object, **kwargs: object) -> Response:
        response = super().file_response(*args, **kwargs)  # type: ignore[arg-type]
        response.headers.setdefault("Cache-Control", "no-cache")
        return response


def mount_static(app: FastAPI) -> None:
    """Serve the page's assets at ``/static`` from the package (no CDN; works offline)."""
    app.mount("/static", _StaticFiles(directory=STATIC_DIR), name="static")
