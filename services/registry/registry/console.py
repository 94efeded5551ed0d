"""A small web console for facility staff with no IT department: one static page that
drives the same facility API (`/v1/postings…`) with the key the staff member types in.
It holds no data and no logic of its own, so it cannot drift from the API's rules."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter(tags=["facility"])

_PAGE = (Path(__file__).parent / "console.html").read_text("utf-8")


@router.get("/console", response_class=HTMLResponse, include_in_schema=False)
async def console() -> HTMLResponse:
    return HTMLResponse(
        _PAGE,
        headers={
            "Content-Security-Policy": "default-src 'self'; script-src 'unsafe-inline' 'self';"
            " style-src 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'",
            "Cache-Control": "no-store",
        },
    )
