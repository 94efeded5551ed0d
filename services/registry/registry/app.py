"""Wiring of the registry service: routes, handlers and sweepers into one process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI

from registry import api, console, handlers, sweepers
from registry.settings import RegistrySettings
from shared.service import ServiceSpec, create_app

DESCRIPTION = """The service facilities talk to: facilities and their keys (admin API),
shift postings and their budget saga, the roster of bookings, and attendance (facility API).
Every error is RFC 9457 problem+json. POSTs of the facility API need an `Idempotency-Key`."""


def spec(settings: RegistrySettings) -> ServiceSpec:
    return ServiceSpec(
        name="registry",
        title="Danggeun Gwangsan registry",
        description=DESCRIPTION,
        migrations_dir=Path(__file__).parent / "migrations",
        routers=(api.admin, api.facility, console.router),
        register_handlers=handlers.register,
        sweepers=sweepers.sweepers(settings),
        openapi_tags=(
            {"name": "admin", "description": "administrators (admin token)"},
            {"name": "facility", "description": "facility staff (facility key)"},
            {"name": "ops", "description": "health, readiness"},
        ),
    )


SPEC = spec(RegistrySettings())


def _refine_openapi(app: FastAPI, settings: RegistrySettings) -> None:
    """Make the OpenAPI document say which dongs a facility may be in (the configured ones).
    Validation errors as 400 problem+json and the admin routes' 401 are said by the shared
    service wiring (shared/problems.py)."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = original()
        components = schema.get("components", {}).get("schemas", {})
        dong = components.get("FacilityCreate", {}).get("properties", {}).get("dong")
        if dong is not None:
            dong["enum"] = list(settings.facility_dongs)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def build(settings: RegistrySettings | None = None) -> FastAPI:
    settings = settings or RegistrySettings()
    app = create_app(spec(settings), settings)
    _refine_openapi(app, settings)
    return app
