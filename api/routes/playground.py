"""GET /: the web playground, a plain page (api/static) that talks to the /v1 API from the browser.

The page and its assets (a style sheet, and native ES modules: app.js and js/*.js) are files
shipped inside the package, served as they are: no build step. Only the files listed from that
folder when the app starts are served, each by its exact relative path, so a request cannot
reach anything else (`..`, absolute paths and the like name no listed file).
The page is public; the API calls it makes carry the API key the user types in.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, status
from fastapi.responses import FileResponse

from api.errors import problem

__all__ = ["STATIC_DIR", "router"]

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
ASSETS = frozenset(
    path.relative_to(STATIC_DIR).as_posix()
    for path in STATIC_DIR.rglob("*")
    if path.is_file() and path != STATIC_DIR / "index.html"
)
NO_CACHE = {"Cache-Control": "no-cache"}
"""Revalidate each time, so a new version of the page is never mixed with an old script."""

router = APIRouter(include_in_schema=False)


@router.get("/")
async def index() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html; charset=utf-8", headers=NO_CACHE)


@router.get("/static/{name:path}")
async def asset(name: str) -> FileResponse:
    """The page's scripts and style sheet; the type comes from the extension (.js, .css)."""
    if name not in ASSETS:
        raise problem(status.HTTP_404_NOT_FOUND, f"no file {name!r} here")
    return FileResponse(STATIC_DIR / name, headers=NO_CACHE)
