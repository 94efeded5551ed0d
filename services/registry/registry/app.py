"""Wiring of the registry service: routes, handlers and sweepers into one process."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from registry.settings import RegistrySettings
from shared.service import ServiceSpec, create_app

SPEC = ServiceSpec(
    name="registry",
    title="Danggeun Gwangsan registry",
    description="",
    migrations_dir=Path(__file__).parent / "migrations",
)


def build(settings: RegistrySettings | None = None) -> FastAPI:
    return create_app(SPEC, settings or RegistrySettings())
