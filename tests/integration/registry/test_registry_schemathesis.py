"""schemathesis against the running registry's own OpenAPI document: no 5xx, and every
answer matches the schema it publishes (status codes, content types, bodies, headers).

Admin operations get the admin token, facility operations a live facility key, so the
generated requests reach the handlers and not only the authentication. The clock endpoint
is left out: generated times would move the clock every service shares. The check "valid
data is always accepted" is left out too: the schema promises shape, while business rules
(a shift in the past, a full posting) refuse well-shaped requests with documented 4xx.

schemathesis's pytest plugin does not run under pytest 9 (it reads a removed node
attribute), so each operation's strategy is driven with hypothesis directly.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.fuzz.openapi_fuzz import (
    EXCLUDED_CHECKS,
    FuzzRun,
    fuzz_service,
    load,
    wrong_type_service,
)

pytestmark = pytest.mark.stack

EXAMPLES_PER_OPERATION_AND_MODE = 20


def happy_path(schema: Any, url: str, admin: dict[str, str], facility: dict[str, str]) -> list[str]:
    """Requests that succeed (generated data rarely does: shifts must be in the future), sent
    through schemathesis's checks so the 2xx bodies are validated against the schema too."""
    operations = {op.label: op for op in (r.ok() for r in schema.get_all_operations())}
    now = datetime.fromisoformat(httpx.get(f"{url}/v1/admin/clock", headers=admin).json()["now"])
    starts = now + timedelta(days=3)
    failures: list[str] = []

    def call(label: str, **kwargs: Any) -> Any:
        try:
            return (
                operations[label]
                .Case(**kwargs)
                .call_and_validate(base_url=url, excluded_checks=EXCLUDED_CHECKS, timeout=30)
            )
        except Exception as exc:
            failures.append(f"{label} [happy path]: {exc}")
            return None

    fac = call(
        "POST /v1/admin/facilities",
        headers=admin,
        body={"name": "공원", "kind": "park", "dong": "평동", "requires_child_safety_check": True},
    )
    call("GET /v1/admin/facilities", headers=admin, query={"limit": 2})
    if fac is not None:
        fid = fac.json()["id"]
        call(
            "GET /v1/admin/facilities/{facility_id}",
            headers=admin,
            path_parameters={"facility_id": fid},
        )
        call(
            "POST /v1/admin/facilities/{facility_id}/keys/rotate",
            headers=admin,
            path_parameters={"facility_id": fid},
        )
    shift = {
        "title": "산책로 정리",
        "starts_at": starts.isoformat(),
        "ends_at": (starts + timedelta(hours=2)).isoformat(),
        "capacity": 2,
        "selection": "draw",
        "applications_close_at": (starts - timedelta(hours=5)).isoformat(),
        "tags": ["공원"],
    }
    created = call(
        "POST /v1/postings", headers={**facility, "Idempotency-Key": uuid.uuid4().hex}, body=shift
    )
    call("GET /v1/postings", headers=facility, query={"status": ["pending_budget"], "limit": 3})
    if created is not None:
        pid = {"posting_id": created.json()["id"]}
        call("GET /v1/postings/{posting_id}", headers=facility, path_parameters=pid)
        call("GET /v1/postings/{posting_id}/roster", headers=facility, path_parameters=pid)
        call(
            "PATCH /v1/postings/{posting_id}",
            headers=facility,
            path_parameters=pid,
            body={"title": "산책로 정리 (오전)"},
        )
        call(
            "POST /v1/postings/{posting_id}/cancel",
            headers={**facility, "Idempotency-Key": uuid.uuid4().hex},
            path_parameters=pid,
            body={"note": "비 예보"},
        )
        call(
            "PUT /v1/postings/{posting_id}/attendance",
            headers=facility,
            path_parameters=pid,
            body={"records": [{"booking_id": "bkg_x", "status": "no_show"}]},
        )
    if fac is not None:
        call(
            "POST /v1/admin/facilities/{facility_id}/suspend",
            headers=admin,
            path_parameters={"facility_id": fac.json()["id"]},
        )
    return failures


def test_registry_api_honours_its_own_schema(stack_env: dict[str, str]) -> None:
    """Generated requests, valid and invalid, to every operation: never a 5xx, and each
    answer conforms to the published OpenAPI document."""
    url = stack_env["REGISTRY_URL"]
    admin = {"Authorization": f"Bearer {stack_env['ADMIN_TOKEN']}"}
    created = httpx.post(
        f"{url}/v1/admin/facilities",
        headers=admin,
        json={
            "name": "schemathesis 작은도서관",
            "kind": "small_library",
            "dong": "수완동",
            "requires_child_safety_check": False,
        },
        timeout=30,
    )
    assert created.status_code == 201, created.text
    facility = {"Authorization": f"Bearer {created.json()['api_key']}"}
    schema = load(url, exclude=[("PUT", r"^/v1/admin/clock"), ("GET", r"^/v1/admin/clock")])
    run = FuzzRun()
    fuzz_service(
        schema,
        url,
        lambda op: admin if op.path.startswith("/v1/admin") else facility,
        EXAMPLES_PER_OPERATION_AND_MODE,
        run,
    )
    run.failures.extend(happy_path(schema, url, admin, facility))
    # valid bodies with one integer or boolean of another JSON type: each a 400
    wrong_type_service(
        schema, url, lambda op: admin if op.path.startswith("/v1/admin") else facility, run
    )
    print(f"wrong types: {run.wrong_types_sent} sent, {run.wrong_types_refused} refused")
    assert run.wrong_types_sent >= 5, run.wrong_types_sent
    assert len(run.ran) >= 2 * 10, run.ran
    assert run.sent >= 300, run.sent
    assert not run.failures, "\n\n".join(run.failures)
