"""A small web console for facility staff with no IT department: static files (plain HTML,
CSS and JavaScript in `console/`, no framework, no build step) that drive the same facility
API (`/v1/postings…`) with the key the staff member types in. It holds no data and no logic
of its own, so it cannot drift from the API's rules.

`/console` answers the page, `/console/<file>` its assets; only the files present in
`console/` when the service starts are served (no path from the request reaches the disk).
Everything comes from this origin: the CSP allows nothing else, not even inline script."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import Response

router = APIRouter(tags=["facility"])

_DIR = Path(__file__).parent / "console"
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}
# name -> (bytes, media type), read once: the files are part of the release.
_FILES = {p.name: (p.read_bytes(), _TYPES[p.suffix]) for p in _DIR.iterdir() if p.suffix in _TYPES}
_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self';"
    " img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none';"
    " frame-ancestors 'none'",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def _answer(name: str) -> Response:
    found = _FILES.get(name)
    if found is None:
        raise HTTPException(404)
    content, media_type = found
    return Response(content, media_type=media_type, headers=_HEADERS)


@router.get("/console", include_in_schema=False)
async def console() -> Response:
    return _answer("index.html")


@router.get("/console/{name}", include_in_schema=False)
async def console_asset(name: str) -> Response:
    return _answer(name)
