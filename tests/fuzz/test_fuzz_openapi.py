"""schemathesis against the OpenAPI documents of all three running services, each
operation called with the credentials it needs, and the endpoint × caller matrix: every
protected operation refuses a caller without a token (401) and a caller with another role's
token (401/403), never a 2xx."""

from __future__ import annotations

import random
import time
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from .openapi_fuzz import (
    EXCLUDED_CHECKS,
    FuzzRun,
    fuzz_service,
    load,
    operations,
    wrong_type_service,
)

pytestmark = [pytest.mark.stack, pytest.mark.slow]

EXAMPLES = 10  # per operation and mode: several hundred requests in all
MATRIX_EXAMPLES = 2  # generated cases per operation for the caller matrix

# The clock is shared by every service and suite: generated times would move it for all.
NO_CLOCK = [("PUT", r"^/v1/admin/clock$")]

# Valid data here would change policy, budgets or months every other suite relies on;
# these get invalid data only (which must be refused and change nothing).
STATEFUL_ALLOWANCE = {
    "PUT /v1/admin/rates",
    "PUT /v1/admin/minimum-wages",
    "PUT /v1/admin/caps",
    "PUT /v1/admin/budget",
    "POST /v1/periods/{period}/close",
    "POST /v1/periods/{period}/mark-paid",
}
# A valid rotation would expire the partner token every other suite reads with (after the
# overlap a generated body may set to 0): invalid data only.
STATEFUL_MATCHER = {"POST /v1/admin/partner/token/rotate"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def credentials(stack_env: dict[str, str]) -> dict[str, dict[str, str]]:
    """The admin and finance tokens, the partner's API token, and the key of a facility
    made for this module."""
    created = httpx.post(
        f"{stack_env['REGISTRY_URL']}/v1/admin/facilities",
        headers=bearer(stack_env["ADMIN_TOKEN"]),
        json={
            "name": "퍼징 경로당",
            "kind": "senior_centre",
            "dong": "월곡1동",
            "requires_child_safety_check": False,
        },
        timeout=30,
    )
    assert created.status_code == 201, created.text
    return {
        "admin": bearer(stack_env["ADMIN_TOKEN"]),
        "finance": bearer(stack_env["FINANCE_TOKEN"]),
        "facility": bearer(created.json()["api_key"]),
        "partner": bearer(stack_env["PARTNER_API_TOKEN"]),
        "forged": bearer("not-a-token-" + "x" * 32),
    }


def role_of(service: str, operation: Any) -> str | None:
    """Which caller an operation is for (None: public, or signed like the webhooks)."""
    path: str = operation.path
    if path.startswith("/v1/admin"):
        return "admin"
    if service == "registry" and path.startswith("/v1/postings"):
        return "facility"
    if service == "allowance" and path.startswith("/v1/"):
        return "finance"
    if service == "matcher" and path.startswith("/v1/partner/") and path != "/v1/partner/webhooks":
        return "partner"
    return None


SERVICES = ("registry", "matcher", "allowance")


@pytest.mark.timeout(240)
def test_every_operation_of_every_service_honours_its_schema(
    stack_env: dict[str, str], credentials: dict[str, dict[str, str]]
) -> None:
    """Generated requests, valid and invalid, to every operation of the three services,
    each with its role's credentials: never a 5xx, and every answer conforms to the
    document the service publishes."""
    began = time.monotonic()
    run = FuzzRun()
    for service in SERVICES:
        url = stack_env[f"{service.upper()}_URL"]
        schema = load(url, exclude=NO_CLOCK)

        def auth_of(operation: Any, service: str = service) -> dict[str, str]:
            role = role_of(service, operation)
            return credentials[role] if role else {}

        def negative_only(operation: Any, service: str = service) -> bool:
            stateful = {"allowance": STATEFUL_ALLOWANCE, "matcher": STATEFUL_MATCHER}
            return operation.label in stateful.get(service, set())

        fuzz_service(schema, url, auth_of, EXAMPLES, run, negative_only=negative_only)
    print(
        f"schemathesis: {len(run.ran)} operation×mode runs, {run.sent} requests, {time.monotonic() - began:.0f} s"
    )
    assert not run.failures, "\n\n".join(run.failures)
    assert len(run.ran) >= 60, run.ran
    assert run.sent >= 300, run.sent


@pytest.mark.timeout(240)
def test_no_write_api_takes_a_value_of_another_json_type(
    stack_env: dict[str, str], credentials: dict[str, dict[str, str]]
) -> None:
    """Every operation with a JSON body, on all three services: generated valid bodies
    with each integer or boolean in turn replaced by `"7"`, `7.0`, `true` (for 7) or
    `"true"`, `1` (for true) are each refused with 400 naming that field — none is read
    leniently (`false` as a 0-won cap, `true` as a capacity of 1). State-changing policy
    operations are included: a refused body changes nothing."""
    run = FuzzRun()
    for service in SERVICES:
        url = stack_env[f"{service.upper()}_URL"]

        def auth_of(operation: Any, service: str = service) -> dict[str, str]:
            role = role_of(service, operation)
            return credentials[role] if role else {}

        # Operations without a role (health, the signed partner webhooks) are left out:
        # they refuse an unsigned request before reading its body.
        wrong_type_service(
            load(url, exclude=NO_CLOCK),
            url,
            auth_of,
            run,
            only=lambda op, service=service: role_of(service, op) is not None,
        )
    print(
        f"wrong types: {len(run.ran)} operations, {run.wrong_types_sent} requests,"
        f" {run.wrong_types_refused} refused with 400 naming the field"
    )
    assert not run.failures, "\n\n".join(run.failures)
    assert run.wrong_types_sent >= 20, run.wrong_types_sent


def _matrix(
    service: str,
    url: str,
    operation: Any,
    role: str,
    credentials: dict[str, dict[str, str]],
    wrong: list[str],
) -> int:
    """Send generated valid cases of one operation as nobody and as every other caller;
    note every answer that is not a refusal. Returns the number of calls."""
    others = [r for r in ("admin", "finance", "facility", "partner", "forged") if r != role]
    calls = 0

    @given(
        case=operation.as_strategy(
            generation_mode=GenerationMode.POSITIVE, headers=credentials[role]
        )
    )
    @settings(
        max_examples=MATRIX_EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def matrix(case: Any) -> None:
        nonlocal calls
        base = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
        for caller in [None, *others]:
            case.headers = {**base, **(credentials[caller] if caller else {})}
            response = case.call(base_url=url, timeout=30)
            calls += 1
            allowed = {401} if caller is None else {401, 403}
            if response.status_code not in allowed:
                wrong.append(
                    f"{service} {operation.label} as {caller or 'nobody'}:"
                    f" {response.status_code} {response.text[:200]}"
                )

    matrix()
    return calls


@pytest.mark.timeout(180)
def test_every_protected_operation_refuses_missing_and_wrong_credentials(
    stack_env: dict[str, str], credentials: dict[str, dict[str, str]]
) -> None:
    """For generated valid requests to every operation that needs a role: without a token
    the answer is 401, with a forged token or another role's token 401 or 403 — zero
    unauthorized 2xx in the endpoint × caller matrix."""
    cells = 0
    wrong: list[str] = []
    for service in SERVICES:
        url = stack_env[f"{service.upper()}_URL"]
        for operation in operations(load(url, exclude=NO_CLOCK)):
            role = role_of(service, operation)
            if role is not None:
                cells += _matrix(service, url, operation, role, credentials, wrong)
    print(f"caller matrix: {cells} calls")
    assert cells >= 100, cells
    assert not wrong, "\n".join(wrong)


def test_stateful_finance_operations_answer_as_documented(
    stack_env: dict[str, str], credentials: dict[str, dict[str, str]]
) -> None:
    """The allowance operations fuzzed with invalid data only are each called once with
    valid data where that harms no other suite — a budget for a fiscal year nobody uses,
    closing and marking paid a month centuries ahead — and their answers (2xx or a
    documented refusal) conform to the schema."""
    url = stack_env["ALLOWANCE_URL"]
    ops = {op.label: op for op in operations(load(url, exclude=NO_CLOCK))}
    year = next(
        y
        for y in random.Random().sample(range(9000, 9998), 50)
        if httpx.get(
            f"{url}/v1/admin/budget",
            params={"fiscal_year": y},
            headers=credentials["admin"],
            timeout=30,
        ).status_code
        == 404
    )
    period = {"period": f"{year}-12"}
    calls = [
        (
            "PUT /v1/admin/budget",
            {
                "headers": credentials["admin"],
                "body": {"fiscal_year": year, "amount_won": 1_000_000, "note": "fuzz suite"},
            },
        ),
        (
            "POST /v1/periods/{period}/close",
            {"headers": credentials["finance"], "path_parameters": period},
        ),
        (
            "POST /v1/periods/{period}/mark-paid",
            {"headers": credentials["finance"], "path_parameters": period},
        ),
    ]
    statuses: dict[str, int] = {}
    for label, kwargs in calls:
        response = (
            ops[label]
            .Case(**kwargs)
            .call_and_validate(base_url=url, excluded_checks=EXCLUDED_CHECKS, timeout=30)
        )
        statuses[label] = response.status_code
    assert statuses["PUT /v1/admin/budget"] == 200, statuses
    assert all(s < 500 for s in statuses.values()), statuses
    print(f"stateful finance operations: {statuses}")
