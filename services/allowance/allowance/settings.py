"""Settings of the allowance service (environment variables; see docs/operations.md)."""

from __future__ import annotations

from shared.settings import ServiceSettings


class AllowanceSettings(ServiceSettings):
    service_name: str = "allowance"
    port: int = 8003
