"""A tiny client of the running system, one function per HTTP call, the way facilities,
administrators, finance staff and the partner drive it (Cosmic Python's api_client.py).

Functions return the decoded JSON body (or the raw bytes of a file) and raise `ApiError`
(with status and problem body) when the answer is not the expected status, so a test reads
as the story it tells. `raw` makes any call and returns the response, for contract tests
that look at statuses and headers.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from tools.partner_sim import client as partner


class ApiError(AssertionError):
    def __init__(self, response: httpx.Response) -> None:
        self.status = response.status_code
        try:
            self.body: Any = response.json()
        except ValueError:
            self.body = response.text
        super().__init__(
            f"{response.request.method} {response.request.url}: {self.status} {self.body}"
        )


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
    """Where the services and the partner simulator are, and the staff tokens and partner
    secret (from .run/stack.env)."""

    registry_url: str
    matcher_url: str
    allowance_url: str
    admin_token: str
    finance_token: str
    webhook_secret: str
    sim_url: str
    timeout_s: float = 30.0

    @classmethod
    def from_env(cls, env: dict[str, str], sim_url: str) -> System:
        return cls(
            env["REGISTRY_URL"],
            env["MATCHER_URL"],
            env["ALLOWANCE_URL"],
            env["ADMIN_TOKEN"],
            env["FINANCE_TOKEN"],
            env["PARTNER_WEBHOOK_SECRET"].split(",")[0].strip(),
            sim_url,
        )

    def client(self, base_url: str, token: str | None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.AsyncClient(base_url=base_url, headers=headers, timeout=self.timeout_s)


def _new_key() -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex}


async def raw(
    system: System, base_url: str, token: str | None, method: str, path: str, **kw: Any
) -> httpx.Response:
    """Any call, answered as it is (status, headers, body)."""
    async with system.client(base_url, token) as c:
        return await c.request(method, path, **kw)


# --- clock (test/demo) --------------------------------------------------------------------


async def get_clock(system: System) -> datetime:
    async with system.client(system.registry_url, system.admin_token) as c:
        return datetime.fromisoformat(_ok(await c.get("/v1/admin/clock"))["now"])


async def set_clock(system: System, now: datetime) -> datetime:
    async with system.client(system.registry_url, system.admin_token) as c:
        body = _ok(await c.put("/v1/admin/clock", json={"now": now.isoformat()}))
        return datetime.fromisoformat(body["now"])


# --- registry: admin ----------------------------------------------------------------------


async def create_facility(system: System, **fields: Any) -> dict[str, Any]:
    async with system.client(system.registry_url, system.admin_token) as c:
        return _ok(await c.post("/v1/admin/facilities", json=fields), 201)


async def rotate_facility_key(system: System, facility_id: str) -> dict[str, Any]:
    async with system.client(system.registry_url, system.admin_token) as c:
        return _ok(await c.post(f"/v1/admin/facilities/{facility_id}/keys/rotate"), 200, 201)


async def suspend_facility(system: System, facility_id: str) -> dict[str, Any]:
    async with system.client(system.registry_url, system.admin_token) as c:
        return _ok(await c.post(f"/v1/admin/facilities/{facility_id}/suspend"), 200, 201)


async def list_facilities(system: System, **params: Any) -> dict[str, Any]:
    async with system.client(system.registry_url, system.admin_token) as c:
        return _ok(await c.get("/v1/admin/facilities", params=params))


# --- registry: facility -------------------------------------------------------------------


async def post_shift(
    system: System, key: str, idempotency_key: str | None = None, **fields: Any
) -> dict[str, Any]:
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else _new_key()
    async with system.client(system.registry_url, key) as c:
        return _ok(await c.post("/v1/postings", json=fields, headers=headers), 201)


async def get_posting(system: System, key: str, posting_id: str) -> dict[str, Any]:
    async with system.client(system.registry_url, key) as c:
        return _ok(await c.get(f"/v1/postings/{posting_id}"))


async def list_postings(system: System, key: str, **params: Any) -> dict[str, Any]:
    async with system.client(system.registry_url, key) as c:
        return _ok(await c.get("/v1/postings", params=params))


async def patch_posting(system: System, key: str, posting_id: str, **fields: Any) -> dict[str, Any]:
    async with system.client(system.registry_url, key) as c:
        return _ok(await c.patch(f"/v1/postings/{posting_id}", json=fields))


async def cancel_posting(
    system: System, key: str, posting_id: str, note: str | None = None
) -> dict[str, Any]:
    body = {"note": note} if note else None
    async with system.client(system.registry_url, key) as c:
        return _ok(
            await c.post(f"/v1/postings/{posting_id}/cancel", json=body, headers=_new_key()),
            200,
            201,
        )


async def get_roster(system: System, key: str, posting_id: str) -> dict[str, Any]:
    async with system.client(system.registry_url, key) as c:
        return _ok(await c.get(f"/v1/postings/{posting_id}/roster"))


async def record_attendance(
    system: System, key: str, posting_id: str, records: list[dict[str, Any]]
) -> dict[str, Any]:
    async with system.client(system.registry_url, key) as c:
        return _ok(await c.put(f"/v1/postings/{posting_id}/attendance", json={"records": records}))


# --- matcher: admin -----------------------------------------------------------------------


async def get_application(system: System, application_id: str) -> dict[str, Any] | None:
    async with system.client(system.matcher_url, system.admin_token) as c:
        r = await c.get(f"/v1/admin/applications/{application_id}")
        return None if r.status_code == 404 else _ok(r)


async def posting_applications(system: System, posting_id: str) -> list[dict[str, Any]]:
    async with system.client(system.matcher_url, system.admin_token) as c:
        body = _ok(
            await c.get(f"/v1/admin/postings/{posting_id}/applications", params={"limit": 1000})
        )
        items: list[dict[str, Any]] = body["items"]
        return items


async def matcher_posting(system: System, posting_id: str) -> dict[str, Any] | None:
    async with system.client(system.matcher_url, system.admin_token) as c:
        r = await c.get(f"/v1/admin/postings/{posting_id}")
        return None if r.status_code == 404 else _ok(r)


async def get_draw(system: System, posting_id: str) -> dict[str, Any] | None:
    async with system.client(system.matcher_url, system.admin_token) as c:
        r = await c.get(f"/v1/admin/draws/{posting_id}")
        return None if r.status_code == 404 else _ok(r)


async def verify_draw(system: System, posting_id: str) -> dict[str, Any]:
    async with system.client(system.matcher_url, system.admin_token) as c:
        return _ok(await c.post(f"/v1/admin/draws/{posting_id}/verify"))


async def get_citizen(system: System, citizen_id: str) -> dict[str, Any]:
    async with system.client(system.matcher_url, system.admin_token) as c:
        return _ok(await c.get(f"/v1/admin/citizens/{citizen_id}"))


async def list_notifications(system: System, status: str, **params: Any) -> dict[str, Any]:
    async with system.client(system.matcher_url, system.admin_token) as c:
        return _ok(await c.get("/v1/admin/notifications", params={"status": status, **params}))


# --- partner: signed webhooks (tools.partner_sim.client) and the simulator -----------------


async def apply(
    system: System,
    posting_id: str,
    citizen: dict[str, Any],
    application_id: str | None = None,
    **kw: Any,
) -> httpx.Response:
    async with httpx.AsyncClient(timeout=system.timeout_s) as http:
        return await partner.submit_application(
            http,
            posting_id=posting_id,
            citizen=citizen,
            application_id=application_id,
            secret=kw.pop("secret", system.webhook_secret),
            matcher_url=system.matcher_url,
            **kw,
        )


async def withdraw(
    system: System, posting_id: str, application_id: str, partner_user_id: str
) -> httpx.Response:
    async with httpx.AsyncClient(timeout=system.timeout_s) as http:
        return await partner.withdraw_application(
            http,
            application_id=application_id,
            posting_id=posting_id,
            partner_user_id=partner_user_id,
            secret=system.webhook_secret,
            matcher_url=system.matcher_url,
        )


async def send_webhook(system: System, body: bytes, **kw: Any) -> httpx.Response:
    async with httpx.AsyncClient(timeout=system.timeout_s) as http:
        return await partner.send_webhook(
            http,
            body,
            secret=kw.pop("secret", system.webhook_secret),
            matcher_url=system.matcher_url,
            **kw,
        )


async def sim_notifications(system: System, **filters: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=system.timeout_s) as http:
        return await partner.received_notifications(http, sim_url=system.sim_url, **filters)


# --- allowance: admin ---------------------------------------------------------------------


async def get_rates(system: System) -> dict[str, Any]:
    async with system.client(system.allowance_url, system.admin_token) as c:
        return _ok(await c.get("/v1/admin/rates"))


async def set_rates(system: System, rates: list[dict[str, Any]], note: str = "") -> dict[str, Any]:
    async with system.client(system.allowance_url, system.admin_token) as c:
        return _ok(await c.put("/v1/admin/rates", json={"rates": rates, "note": note}))


async def get_caps(system: System) -> dict[str, Any]:
    async with system.client(system.allowance_url, system.admin_token) as c:
        return _ok(await c.get("/v1/admin/caps"))


async def get_admin_budget(system: System, fiscal_year: int) -> dict[str, Any] | None:
    async with system.client(system.allowance_url, system.admin_token) as c:
        r = await c.get("/v1/admin/budget", params={"fiscal_year": fiscal_year})
        return None if r.status_code == 404 else _ok(r)


async def set_budget(
    system: System, fiscal_year: int, amount_won: int, note: str
) -> dict[str, Any]:
    async with system.client(system.allowance_url, system.admin_token) as c:
        return _ok(
            await c.put(
                "/v1/admin/budget",
                json={"fiscal_year": fiscal_year, "amount_won": amount_won, "note": note},
            )
        )


# --- allowance: finance -------------------------------------------------------------------


async def get_budget(system: System, **params: Any) -> dict[str, Any]:
    async with system.client(system.allowance_url, system.finance_token) as c:
        return _ok(await c.get("/v1/budget", params=params))


async def get_ledger(system: System, **params: Any) -> Any:
    async with system.client(system.allowance_url, system.finance_token) as c:
        return _ok(await c.get("/v1/ledger", params=params))


async def get_trial_balance(system: System, **params: Any) -> dict[str, Any]:
    async with system.client(system.allowance_url, system.finance_token) as c:
        return _ok(await c.get("/v1/ledger/trial-balance", params=params))


async def get_statements(system: System, period: str, **params: Any) -> Any:
    async with system.client(system.allowance_url, system.finance_token) as c:
        return _ok(await c.get(f"/v1/periods/{period}/statements", params=params))


async def close_period(system: System, period: str) -> dict[str, Any]:
    async with system.client(system.allowance_url, system.finance_token) as c:
        return _ok(await c.post(f"/v1/periods/{period}/close"), 200, 201)


async def get_payout_file(system: System, period: str, format: str = "csv") -> Any:
    async with system.client(system.allowance_url, system.finance_token) as c:
        return _ok(await c.get(f"/v1/periods/{period}/payout-file", params={"format": format}))


async def put_payee(system: System, citizen_ref: str, **fields: Any) -> dict[str, Any]:
    async with system.client(system.allowance_url, system.finance_token) as c:
        return _ok(await c.put(f"/v1/payees/{citizen_ref}", json=fields), 200, 201)
