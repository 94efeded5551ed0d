"""The shared HTTP kit (shared/web.py): staff authentication, pages, cursors, the typed
context. Each test drives a tiny FastAPI app in memory, the way a service's routes use the
kit, with no stack."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI
from pydantic import SecretStr

from shared import problems
from shared.context import ServiceContext
from shared.problems import Problem
from shared.settings import ServiceSettings
from shared.web import (
    CursorCodec,
    Page,
    Staff,
    StaffDirectory,
    cut_page,
    page_of,
    problem_responses,
    staff,
)


class TwoRoleSettings(ServiceSettings):
    finance_token: SecretStr = SecretStr("")

    def staff_tokens(self) -> dict[str, SecretStr]:
        return {**super().staff_tokens(), "finance": self.finance_token}


def facility_key(token: str) -> str | None:
    return "a facility key cannot use the admin API" if token.startswith("fk_") else None


def _ctx(settings: ServiceSettings) -> ServiceContext[Any]:
    # Routes under test touch only settings and resources; the rest is never reached.
    return ServiceContext(settings, None, None, None, None, None)  # type: ignore[arg-type]


def _app(ctx: ServiceContext[Any]) -> FastAPI:
    app = FastAPI()
    problems.install(app)
    app.state.ctx = ctx

    @app.get("/admin-only", responses=problem_responses(401, 403))
    async def admin_only(who: Annotated[Staff, Depends(staff("admin"))]) -> dict[str, str]:
        return {"role": who.role, "label": who.label}

    @app.get("/who")
    async def who_is(who: Annotated[Staff, Depends(staff("admin"))]) -> dict[str, Any]:
        return {
            "authenticated": who.authenticated_staff_id,
            "stated": who.stated_staff_id,
            "client": who.client_address,
        }

    @app.get("/finance")
    async def finance(
        who: Annotated[Staff, Depends(staff("finance", strict_query=True))], q: str = ""
    ) -> dict[str, str]:
        return {"role": who.role}

    @app.get("/admin-strict")
    async def admin_strict(
        who: Annotated[Staff, Depends(staff("admin", foreign=facility_key))],
    ) -> dict[str, str]:
        return {"role": who.role}

    return app


SETTINGS = TwoRoleSettings(
    admin_token=SecretStr("adm-secret"), finance_token=SecretStr("fin-secret")
)


async def _get(app: FastAPI, path: str, token: str | None = None, **headers: str) -> httpx.Response:
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.get(path, headers=headers)


async def test_staff_admits_its_role_and_refuses_others_with_the_right_status() -> None:
    """The right token is admitted (with the stated staff id for audit rows); the other
    staff role's token is 403; no token or an unknown one is 401 with WWW-Authenticate; a
    credential of another kind that the service recognises is 403."""
    app = _app(_ctx(SETTINGS))
    ok = await _get(app, "/admin-only", "adm-secret", **{"x-staff-id": "kim"})
    assert ok.status_code == 200 and ok.json() == {"role": "admin", "label": "admin:kim"}
    assert (await _get(app, "/admin-only", "fin-secret")).status_code == 403
    missing = await _get(app, "/admin-only")
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert missing.headers["content-type"] == problems.PROBLEM_JSON
    assert (await _get(app, "/admin-only", "adm-secreT")).status_code == 401
    assert (await _get(app, "/admin-strict", "fk_0123456789abcdef_x")).status_code == 403
    assert (await _get(app, "/admin-only", "fk_0123456789abcdef_x")).status_code == 401


async def test_an_empty_configured_token_never_matches() -> None:
    """A service without a finance token configured admits nobody as finance, not even
    someone sending an empty bearer."""
    app = _app(_ctx(TwoRoleSettings(admin_token=SecretStr("adm"))))
    assert (await _get(app, "/finance", "")).status_code == 401
    assert (await _get(app, "/finance", "adm")).status_code == 403


async def test_strict_query_refuses_unknown_parameters_only_after_authentication() -> None:
    """A typo in a query parameter is a 400 naming it, for an authenticated caller; an
    anonymous one learns only that it is unauthorized."""
    app = _app(_ctx(SETTINGS))
    assert (await _get(app, "/finance?q=1", "fin-secret")).status_code == 200
    typo = await _get(app, "/finance?qq=1", "fin-secret")
    assert typo.status_code == 400 and typo.json()["errors"][0]["field"] == "qq"
    assert (await _get(app, "/finance?qq=1")).status_code == 401


async def test_a_staff_directory_resolves_named_tokens() -> None:
    """Tokens that are not static are asked of the service's StaffDirectory, if it has one."""
    ctx = _ctx(SETTINGS)

    async def find(_: ServiceContext[Any], token: str) -> Staff | None:
        return Staff("finance", "stf_1", None) if token == "named" else None

    ctx.provide(StaffDirectory(find))
    app = _app(ctx)
    assert (await _get(app, "/finance", "named")).json() == {"role": "finance"}
    assert (await _get(app, "/admin-only", "named")).status_code == 403
    assert (await _get(app, "/admin-only", "nobody")).status_code == 401


def test_openapi_names_a_bearer_scheme_per_role_and_the_problem_shape() -> None:
    spec = _app(_ctx(SETTINGS)).openapi()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["adminToken"]["scheme"] == "bearer"
    assert schemes["financeToken"]["scheme"] == "bearer"
    assert spec["paths"]["/admin-only"]["get"]["security"] == [{"adminToken": []}]
    assert "ProblemDoc" in spec["components"]["schemas"]


def test_a_page_exactly_full_has_no_cursor_and_one_more_row_has_one() -> None:
    """Rows are fetched with limit + 1: an exactly full last page must not promise more."""
    assert cut_page([1, 2, 3], 3).more is False
    cut = cut_page([1, 2, 3, 4], 3)
    assert cut.rows == [1, 2, 3] and cut.more is True
    page = page_of(Page[int], [1, 2, 3, 4], 3, lambda r: r * 10, lambda r: f"c{r}")
    assert page.items == [10, 20, 30] and page.next_cursor == "c3"
    last = page_of(Page[int], [1, 2], 3, lambda r: r, lambda r: f"c{r}")
    assert last.next_cursor is None


def test_cursors_round_trip_and_refuse_anything_else_with_a_400_naming_cursor() -> None:
    codec = CursorCodec(datetime, str)
    at = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    text = codec.encode(at, "pst_1")
    assert codec.decode(text) == (at, "pst_1")
    assert codec.decode(None) is None
    other = CursorCodec(int).encode(7)
    for bad in ["", "!!!", "bm90IGpzb24", other, CursorCodec(str, str).encode("a", "b")]:
        with pytest.raises(Problem) as caught:
            codec.decode(bad)
        assert caught.value.status == 400 and caught.value.errors
        assert caught.value.errors[0]["field"] == "cursor"
    with pytest.raises(Problem):
        CursorCodec(int).decode(CursorCodec(str).encode("1"))


def test_resources_are_looked_up_by_class_and_a_missing_one_fails_loudly() -> None:
    ctx = _ctx(SETTINGS)

    class Cipher:
        pass

    cipher = Cipher()
    ctx.provide(cipher)
    assert ctx.resource(Cipher) is cipher
    assert ctx.discard(Cipher) is cipher
    assert ctx.resource_or_none(Cipher) is None
    with pytest.raises(LookupError):
        ctx.resource(Cipher)


async def test_a_stated_staff_id_is_self_declared_and_the_client_address_is_kept() -> None:
    """With a role token, `X-Staff-Id` is only a statement: never the authenticated staff
    id that audit rows record as the actor; the request's client address comes along."""
    app = _app(_ctx(SETTINGS))
    said = await _get(app, "/who", "adm-secret", **{"x-staff-id": "kim"})
    assert said.json() == {"authenticated": None, "stated": "kim", "client": "127.0.0.1"}
    silent = await _get(app, "/who", "adm-secret")
    assert silent.json() == {"authenticated": None, "stated": None, "client": "127.0.0.1"}
    named = Staff("finance", "fin-7", "r-1")
    assert (named.authenticated_staff_id, named.stated_staff_id) == ("fin-7", None)
