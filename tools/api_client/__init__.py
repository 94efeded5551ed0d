"""The one client of Danggeun Gwangsan's HTTP APIs (decision 0009): one method per call,
grouped by surface, over one connection pool. Tests, the demo, the partner simulator's
client and the operator CLI all call the services through it.

    async with Api(Endpoints.from_env(client_env())) as api:
        facility = await api.registry_admin.create_facility({...})
        posting = await api.facility(facility["api_key"]).post_posting({...})
        await api.partner.submit_application(posting_id=posting["id"], citizen=profile)
        await api.finance.close_period("2026-05")

Calls answer decoded JSON (or a file's bytes) and raise `ApiError` (status, problem+json)
on any other status. `api.raw(...)` and each surface's `request(...)` answer the response as
it is, for contract tests.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

import httpx

from tools.api_client import partner
from tools.api_client.calls import (
    AllowanceAdmin,
    Clock,
    Facility,
    Finance,
    MatcherAdmin,
    RegistryAdmin,
)
from tools.api_client.core import (
    ANY,
    TIMEOUT_S_DEFAULT,
    ApiError,
    Endpoints,
    Json,
    Surface,
    Transport,
    http_client,
)
from tools.api_client.partner import PartnerPull, PartnerWebhooks, Simulator

__all__ = ["ANY", "Api", "ApiError", "Endpoints", "Json", "http_client", "partner"]


class Api:
    """Every surface of the running system, sharing one `httpx.AsyncClient` (its own, closed
    by `aclose` / `async with`, unless one is given)."""

    def __init__(
        self,
        endpoints: Endpoints,
        *,
        http: httpx.AsyncClient | None = None,
        timeout_s: float = TIMEOUT_S_DEFAULT,
        concurrency_max: int | None = None,
    ) -> None:
        self.endpoints = e = endpoints
        self._owns_http = http is None
        self.http = http or http_client(timeout_s=timeout_s)
        self.transport = t = Transport(self.http, concurrency_max)
        self.clock = Clock(t, e.registry_url, e.admin_token)
        self.clocks = tuple(
            Clock(t, url, e.admin_token) for url in (e.registry_url, e.matcher_url, e.allowance_url)
        )
        self.registry_admin = RegistryAdmin(t, e.registry_url, e.admin_token)
        self.matcher_admin = MatcherAdmin(t, e.matcher_url, e.admin_token)
        self.allowance_admin = AllowanceAdmin(t, e.allowance_url, e.admin_token)
        self.finance = Finance(t, e.allowance_url, e.finance_token)
        self.partner = PartnerWebhooks(t, e.matcher_url, e.webhook_secret)
        self.partner_pull = PartnerPull(t, e.matcher_url, e.partner_api_token)
        self.simulator = Simulator(t, e.sim_url)

    def partner_as(self, token: str | None) -> PartnerPull:
        """The partner's pull API with another token (a rotated one, a wrong one, none)."""
        return PartnerPull(self.transport, self.endpoints.matcher_url, token)

    def facility(self, api_key: str) -> Facility:
        """The facility API as the facility holding `api_key`."""
        return Facility(self.transport, self.endpoints.registry_url, api_key)

    async def raw(
        self, base_url: str, token: str | None, method: str, path: str, **kw: Any
    ) -> httpx.Response:
        """Any call with any token (or none), answered as it is (status, headers, body)."""
        return await Surface(self.transport, base_url, token).request(method, path, **kw)

    async def aclose(self) -> None:
        if self._owns_http:
            await self.http.aclose()

    async def __aenter__(self) -> Api:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
