"""A tiny client of the running system, one function per HTTP call, the way facilities,
administrators, finance staff and the partner drive it (Cosmic Python's api_client.py).

Functions return the decoded JSON body and raise `ApiError` (with status and problem body)
when the answer is not the expected status, so a test reads as the story it tells.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx


class ApiError(AssertionError):
    def __init__(self, response: httpx.Response) -> None:
        self.status = response.status_code
        try:
            self.body: Any = response.json()
        except ValueError:
            self.body = response.text
        super().__init__(f"{response.request.method} {response.request.url}: {self.status} {self.body}")


def _ok(response: httpx.Response, *expected: int) -> Any:
    if response.status_code not in (expected or (200,)):
        raise ApiError(response)
    if not response.content:
        return None
    if "json" in response.headers.get("content-type", ""):
        return response.json()
    return response.content


@dataclass
class System:
    """Where the services are and the staff tokens (from .run/stack.env)."""

    registry_url: str
    matcher_url: str
    allowance_url: str
    admin_token: str
    finance_token: str
    timeout_s: float = 30.0

    @classmethod
    def from_env(cls, env: dict[str, str]) -> System:
        return cls(env["REGISTRY_URL"], env["MATCHER_URL"], env["ALLOWANCE_URL"],
                   env["ADMIN_TOKEN"], env["FINANCE_TOKEN"])

    def client(self, base_url: str, token: str | None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.AsyncClient(base_url=base_url, headers=headers, timeout=self.timeout_s)


# --- clock (test/demo) --------------------------------------------------------------------

async def get_clock(system: System) -> dict[str, Any]:
    async with system.client(system.registry_url, system.admin_token) as c:
        return _ok(await c.get("/v1/admin/clock"))


async def set_clock(system: System, now_iso: str) -> dict[str, Any]:
    async with system.client(system.registry_url, system.admin_token) as c:
        return _ok(await c.put("/v1/admin/clock", json={"now": now_iso}))


# --- registry: admin ----------------------------------------------------------------------

async def create_facility(system: System, **fields: Any) -> dict[str, Any]:
    async with system.client(system.registry_url, system.admin_token) as c:
        return _ok(await c.post("/v1/admin/facilities", json=fields,
                                headers={"Idempotency-Key": uuid.uuid4().hex}), 201)


async def rotate_facility_key(system: System, facility_id: str) -> dict[str, Any]:
    async with system.client(system.registry_url, system.admin_token) as c:
        return _ok(await c.post(f"/v1/admin/facilities/{facility_id}/keys/rotate",
                                headers={"Idempotency-Key": uuid.uuid4().hex}), 200, 201)


async def suspend_facility(system: System, facility_id: str) -> dict[str, Any]:
    async with system.client(system.registry_url, system.admin_token) as c:
        return _ok(await c.post(f"/v1/admin/facilities/{facility_id}/suspend",
                                headers={"Idempotency-Key": uuid.uuid4().hex}), 200, 201)


async def list_facilities(system: System, **params: Any) -> dict[str, Any]:
    async with system.client(system.registry_url, system.admin_token) as c:
        return _ok(await c.get("/v1/admin/facilities", params=params))


# --- registry: facility -------------------------------------------------------------------

async def post_shift(system: System, key: str, idempotency_key: str | None = None,
                     **fields: Any) -> dict[str, Any]:
    async with system.client(system.registry_url, key) as c:
        return _ok(await c.post("/v1/postings", json=fields,
                                headers={"Idempotency-Key": idempotency_key or uuid.uuid4().hex}),
                   201)


async def get_posting(system: System, key: str, posting_id: str) -> dict[str, Any]:
    async with system.client(system.registry_url, key) as c:
        return _ok(await c.get(f"/v1/postings/{posting_id}"))


async def list_postings(system: System, key: str, **params: Any) -> dict[str, Any]:
    async with system.client(system.registry_url, key) as c:
        return _ok(await c.get("/v1/postings", params=params))


async def patch_posting(system: System, key: str, posting_id: str, **fields: Any) -> dict[str, Any]:
    async with system.client(system.registry_url, key) as c:
        return _ok(await c.patch(f"/v1/postings/{posting_id}", json=fields))


async def cancel_posting(system: System, key: str, posting_id: str) -> dict[str, Any]:
    async with system.client(system.registry_url, key) as c:
        return _ok(await c.post(f"/v1/postings/{posting_id}/cancel",
                                headers={"Idempotency-Key": uuid.uuid4().hex}), 200, 201)


async def get_roster(system: System, key: str, posting_id: str) -> dict[str, Any]:
    async with system.client(system.registry_url, key) as c:
        return _ok(await c.get(f"/v1/postings/{posting_id}/roster"))


async def record_attendance(system: System, key: str, posting_id: str,
                            records: list[dict[str, Any]]) -> dict[str, Any]:
    async with system.client(system.registry_url, key) as c:
        return _ok(await c.put(f"/v1/postings/{posting_id}/attendance", json={"records": records}))


# --- allowance: admin and finance ---------------------------------------------------------

async def set_budget(system: System, fiscal_year: int, amount_won: int, note: str) -> dict[str, Any]:
    async with system.client(system.allowance_url, system.admin_token) as c:
        return _ok(await c.put("/v1/admin/budget", json={
            "fiscal_year": fiscal_year, "amount_won": amount_won, "note": note}))


async def set_rates(system: System, rates: list[dict[str, Any]]) -> dict[str, Any]:
    async with system.client(system.allowance_url, system.admin_token) as c:
        return _ok(await c.put("/v1/admin/rates", json={"rates": rates}))


async def get_budget(system: System, **params: Any) -> dict[str, Any]:
    async with system.client(system.allowance_url, system.finance_token) as c:
        return _ok(await c.get("/v1/budget", params=params))


async def get_ledger(system: System, **params: Any) -> Any:
    async with system.client(system.allowance_url, system.finance_token) as c:
        return _ok(await c.get("/v1/ledger", params=params))


async def get_statements(system: System, period: str, **params: Any) -> Any:
    async with system.client(system.allowance_url, system.finance_token) as c:
        return _ok(await c.get(f"/v1/periods/{period}/statements", params=params))


async def close_period(system: System, period: str) -> dict[str, Any]:
    async with system.client(system.allowance_url, system.finance_token) as c:
        return _ok(await c.post(f"/v1/periods/{period}/close",
                                headers={"Idempotency-Key": uuid.uuid4().hex}), 200, 201)


async def get_payout_file(system: System, period: str) -> Any:
    async with system.client(system.allowance_url, system.finance_token) as c:
        return _ok(await c.get(f"/v1/periods/{period}/payout-file"))


async def put_payee(system: System, citizen_ref: str, **fields: Any) -> dict[str, Any]:
    async with system.client(system.allowance_url, system.finance_token) as c:
        return _ok(await c.put(f"/v1/payees/{citizen_ref}", json=fields))
