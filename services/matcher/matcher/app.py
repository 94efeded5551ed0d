"""Wiring of the matcher service: routes, handlers and sweepers into one process."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from matcher.settings import MatcherSettings
from shared.service import ServiceSpec, create_app

SPEC = ServiceSpec(
    name="matcher",
    title="Danggeun Gwangsan matcher",
    description="",
    migrations_dir=Path(__file__).parent / "migrations",
)


def build(settings: MatcherSettings | None = None) -> FastAPI:
    return create_app(SPEC, settings or MatcherSettings())
