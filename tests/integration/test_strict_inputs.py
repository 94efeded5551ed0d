"""Strict inputs on the running registry and allowance (issue 21, the probe's findings):
loose numbers and booleans in write bodies, far dates in queries and repeated one-value
query parameters are each a 400 problem naming the field, and nothing is written; a body
that does not arrive in time is a 408."""

from __future__ import annotations

import json
import socket
import time
import uuid
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

pytestmark = pytest.mark.stack


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def fields_of(answer: httpx.Response) -> set[str]:
    assert answer.headers["content-type"].startswith("application/problem+json"), answer.text
    return {e["field"] for e in answer.json().get("errors") or []}


@pytest.fixture(scope="module")
def facility(stack_env: dict[str, str]) -> dict[str, str]:
    created = httpx.post(
        f"{stack_env['REGISTRY_URL']}/v1/admin/facilities",
        headers=bearer(stack_env["ADMIN_TOKEN"]),
        json={
            "name": "엄격한 입력 경로당",
            "kind": "senior_centre",
            "dong": "월곡1동",
            "requires_child_safety_check": False,
        },
        timeout=30,
    )
    assert created.status_code == 201, created.text
    return bearer(created.json()["api_key"])


def test_a_cap_of_false_won_is_refused_and_nothing_changes(stack_env: dict[str, str]) -> None:
    """The probe: `"monthly_amount_max_won": false` was read as 0 won for every month."""
    url, admin = stack_env["ALLOWANCE_URL"], bearer(stack_env["ADMIN_TOKEN"])
    before = httpx.get(f"{url}/v1/admin/caps", headers=admin, timeout=30)
    assert before.status_code == 200, before.text
    cap = {"year": 2026, "weekly_hours_max": 40, "source": "strict-input test"}
    for loose in (False, True, "0", 0.0, "1e2"):
        answer = httpx.put(
            f"{url}/v1/admin/caps",
            headers=admin,
            json={"caps": [{**cap, "monthly_amount_max_won": loose}]},
            timeout=30,
        )
        assert answer.status_code == 400, (loose, answer.text)
        assert fields_of(answer) == {"caps.0.monthly_amount_max_won"}
    for loose in ('"40"', "40.0", "4e1", "true"):
        raw = '{"caps": [{"year": 2026, "weekly_hours_max": %s, "monthly_amount_max_won": 1,'
        raw += ' "source": "strict-input test"}]}'
        answer = httpx.put(
            f"{url}/v1/admin/caps",
            headers={**admin, "Content-Type": "application/json"},
            content=raw % loose,
            timeout=30,
        )
        assert answer.status_code == 400, (loose, answer.text)
        assert fields_of(answer) == {"caps.0.weekly_hours_max"}
    after = httpx.get(f"{url}/v1/admin/caps", headers=admin, timeout=30)
    assert after.json() == before.json()


def _shift(now: datetime) -> dict[str, Any]:
    starts = now + timedelta(days=3)
    return {
        "title": "엄격한 입력",
        "starts_at": starts.isoformat(),
        "ends_at": (starts + timedelta(hours=2)).isoformat(),
        "selection": "first_come",
    }


def test_a_posting_capacity_must_be_a_json_integer(
    stack_env: dict[str, str], facility: dict[str, str]
) -> None:
    """The probe: `"capacity": true` was stored as 1, `"7"` as 7. Also `"true"`, `1.0` and
    `1e2` (JSON number literals that are not integers); none creates a posting."""
    url = stack_env["REGISTRY_URL"]
    now = datetime.fromisoformat(
        httpx.get(
            f"{url}/v1/admin/clock", headers=bearer(stack_env["ADMIN_TOKEN"]), timeout=30
        ).json()["now"]
    )
    shift = json.dumps(_shift(now))[:-1]  # the object without its closing brace
    for literal in ("true", '"7"', '"true"', "1.0", "1e2", "false", "null", "[7]"):
        answer = httpx.post(
            f"{url}/v1/postings",
            headers={
                **facility,
                "Idempotency-Key": uuid.uuid4().hex,
                "Content-Type": "application/json",
            },
            content=f'{shift}, "capacity": {literal}}}',
            timeout=30,
        )
        assert answer.status_code == 400, (literal, answer.text)
        assert fields_of(answer) == {"capacity"}, literal
    listed = httpx.get(f"{url}/v1/postings", headers=facility, timeout=30)
    assert listed.status_code == 200 and listed.json()["items"] == []
    ok = httpx.post(
        f"{url}/v1/postings",
        headers={**facility, "Idempotency-Key": uuid.uuid4().hex},
        json={**_shift(now), "capacity": 7},
        timeout=30,
    )
    assert ok.status_code in (201, 202), ok.text
    assert ok.json()["capacity"] == 7


def test_a_boolean_must_be_a_json_boolean(stack_env: dict[str, str]) -> None:
    url, admin = stack_env["REGISTRY_URL"], bearer(stack_env["ADMIN_TOKEN"])
    body = {"name": "엄격한 공원", "kind": "park", "dong": "평동"}
    for loose in ("true", 1, 0, "yes", None):
        answer = httpx.post(
            f"{url}/v1/admin/facilities",
            headers=admin,
            json={**body, "requires_child_safety_check": loose},
            timeout=30,
        )
        assert answer.status_code == 400, (loose, answer.text)
        assert fields_of(answer) == {"requires_child_safety_check"}


@pytest.mark.parametrize(
    "service, path, params, field",
    [
        ("ALLOWANCE", "/v1/ledger", {"from": "0001-01-01"}, "query.from"),
        ("ALLOWANCE", "/v1/ledger", {"to": "9999-12-31"}, "query.to"),
        ("ALLOWANCE", "/v1/ledger", {"from": "20260101"}, "query.from"),
        ("ALLOWANCE", "/v1/ledger/trial-balance", {"as_of": "0001-01-01T00:00:00Z"}, "query.as_of"),
        ("ALLOWANCE", "/v1/budget", {"fiscal_year": "2026", "as_of": "1"}, "query.as_of"),
    ],
)
def test_a_far_date_in_a_query_is_a_400_naming_it(
    stack_env: dict[str, str], service: str, path: str, params: dict[str, str], field: str
) -> None:
    """The probe: `GET /v1/ledger?from=0001-01-01` was a 500 (Postgres: date out of range)."""
    answer = httpx.get(
        f"{stack_env[service + '_URL']}{path}",
        params=params,
        headers=bearer(stack_env["FINANCE_TOKEN"]),
        timeout=30,
    )
    assert answer.status_code == 400, answer.text
    assert field in fields_of(answer)


def test_a_far_instant_in_the_registry_list_is_a_400(
    stack_env: dict[str, str], facility: dict[str, str]
) -> None:
    for name in ("starts_from", "starts_before"):
        answer = httpx.get(
            f"{stack_env['REGISTRY_URL']}/v1/postings",
            params={name: "0001-01-01T00:00:00+14:00"},
            headers=facility,
            timeout=30,
        )
        assert answer.status_code == 400, answer.text
        assert fields_of(answer) == {f"query.{name}"}


def test_a_repeated_one_value_query_parameter_is_refused(
    stack_env: dict[str, str], facility: dict[str, str]
) -> None:
    """The probe: `cursor` given twice, the second junk, was accepted."""
    cases = [
        (stack_env["ALLOWANCE_URL"], "/v1/ledger", bearer(stack_env["FINANCE_TOKEN"]), "cursor"),
        (stack_env["ALLOWANCE_URL"], "/v1/ledger", bearer(stack_env["FINANCE_TOKEN"]), "limit"),
        (stack_env["REGISTRY_URL"], "/v1/postings", facility, "cursor"),
        (
            stack_env["REGISTRY_URL"],
            "/v1/admin/facilities",
            bearer(stack_env["ADMIN_TOKEN"]),
            "cursor",
        ),
    ]
    for url, path, headers, name in cases:
        first = "1" if name == "limit" else None
        if first is None:
            listed = httpx.get(f"{url}{path}", params={"limit": 1}, headers=headers, timeout=30)
            first = listed.json().get("next_cursor") or "x"
        answer = httpx.get(
            f"{url}{path}", params=[(name, first), (name, "junk")], headers=headers, timeout=30
        )
        assert answer.status_code == 400, (path, name, answer.text)
        assert fields_of(answer) == {name}, (path, name)
    # a list parameter may repeat
    many = httpx.get(
        f"{stack_env['REGISTRY_URL']}/v1/postings",
        params=[("status", "open"), ("status", "cancelled")],
        headers=facility,
        timeout=30,
    )
    assert many.status_code == 200, many.text


def test_a_body_that_does_not_arrive_is_a_408(stack_env: dict[str, str]) -> None:
    """A raw socket announces a body and sends only part of it: the service answers 408
    problem+json once the body read timeout passes, rather than holding the request."""
    parts = urlsplit(stack_env["REGISTRY_URL"])
    with socket.create_connection((parts.hostname, parts.port or 80), timeout=60) as sock:
        sock.sendall(
            (
                f"POST /v1/admin/facilities HTTP/1.1\r\nHost: {parts.hostname}\r\n"
                f"Authorization: Bearer {stack_env['ADMIN_TOKEN']}\r\n"
                "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
            ).encode()
        )
        started = time.monotonic()
        received = b""
        while b"\r\n\r\n" not in received or not received.rstrip().endswith(b"}"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            received += chunk
        took = time.monotonic() - started
    assert received.startswith(b"HTTP/1.1 408"), received[:200]
    assert b"body_timeout" in received
    assert took < 30


def test_a_blank_name_is_refused_in_korean_and_nothing_is_written(
    stack_env: dict[str, str], facility: dict[str, str]
) -> None:
    """Issue 15: a facility named `"   "` was accepted. Now spaces-only text is a 400
    naming the field (`string_blank`, Korean with `Accept-Language: ko`) on every write
    API — a facility's name, a posting's title, a budget note — and nothing is written."""
    registry, allowance = stack_env["REGISTRY_URL"], stack_env["ALLOWANCE_URL"]
    admin = bearer(stack_env["ADMIN_TOKEN"])

    def facilities() -> list[dict[str, Any]]:
        listed = httpx.get(
            f"{registry}/v1/admin/facilities", params={"limit": 1000}, headers=admin, timeout=30
        )
        assert listed.status_code == 200, listed.text
        items: list[dict[str, Any]] = listed.json()["items"]
        return items

    before = facilities()
    body = {"kind": "park", "dong": "평동", "requires_child_safety_check": False}
    for blank in ("   ", "", "\t\u3000"):
        answer = httpx.post(
            f"{registry}/v1/admin/facilities",
            headers={**admin, "Accept-Language": "ko"},
            json={**body, "name": blank},
            timeout=30,
        )
        assert answer.status_code == 400, (blank, answer.text)
        assert fields_of(answer) == {"name"}
        [error] = answer.json()["errors"]
        assert error["code"] == "string_blank" and "공백" in error["message"], error
    assert facilities() == before
    trimmed = httpx.post(
        f"{registry}/v1/admin/facilities",
        headers=admin,
        json={**body, "name": "  빈칸 없는 공원  ", "address": " 평동로 1 "},
        timeout=30,
    )
    assert trimmed.status_code == 201, trimmed.text
    assert (trimmed.json()["name"], trimmed.json()["address"]) == ("빈칸 없는 공원", "평동로 1")

    now = datetime.fromisoformat(
        httpx.get(f"{registry}/v1/admin/clock", headers=admin, timeout=30).json()["now"]
    )
    posted = httpx.post(
        f"{registry}/v1/postings",
        headers={**facility, "Idempotency-Key": uuid.uuid4().hex},
        json={**_shift(now), "capacity": 1, "title": "  "},
        timeout=30,
    )
    assert posted.status_code == 400 and fields_of(posted) == {"title"}, posted.text

    budget_before = httpx.get(
        f"{allowance}/v1/admin/budget", params={"fiscal_year": 2099}, headers=admin, timeout=30
    )
    answer = httpx.put(
        f"{allowance}/v1/admin/budget",
        headers=admin,
        json={"fiscal_year": 2099, "amount_won": 1000, "note": "   "},
        timeout=30,
    )
    assert answer.status_code == 400 and fields_of(answer) == {"note"}, answer.text
    budget_after = httpx.get(
        f"{allowance}/v1/admin/budget", params={"fiscal_year": 2099}, headers=admin, timeout=30
    )
    assert (budget_after.status_code, budget_after.text) == (
        budget_before.status_code,
        budget_before.text,
    )
