"""Settings of the registry service (environment variables; see docs/operations.md)."""

from __future__ import annotations

from shared.settings import ServiceSettings


class RegistrySettings(ServiceSettings):
    service_name: str = "registry"
    port: int = 8001
