"""Settings of the matcher service (environment variables; see docs/operations.md)."""

from __future__ import annotations

from shared.settings import ServiceSettings


class MatcherSettings(ServiceSettings):
    service_name: str = "matcher"
    port: int = 8002
