"""Wiring of the allowance service: routes, handlers and sweepers into one process."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from allowance.settings import AllowanceSettings
from shared.service import ServiceSpec, create_app

SPEC = ServiceSpec(
    name="allowance",
    title="Danggeun Gwangsan allowance",
    description="",
    migrations_dir=Path(__file__).parent / "migrations",
)


def build(settings: AllowanceSettings | None = None) -> FastAPI:
    return create_app(SPEC, settings or AllowanceSettings())
