"""Driving schemathesis without its pytest plugin (which fails on pytest 9: it reads a
removed node attribute): each operation's strategy is run with hypothesis directly, and
every case goes through schemathesis's checks (no 5xx, status codes, content types, bodies
and headers as documented, invalid data refused).

The check "valid data is always accepted" is left out: the schema promises shape, while
business rules (a shift in the past, an unknown id) refuse well-shaped requests with
documented 4xx.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig
from schemathesis.config._checks import NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES
from schemathesis.specs.openapi.checks import positive_data_acceptance

EXCLUDED_CHECKS = [positive_data_acceptance]
REQUEST_TIMEOUT_S = 30

# Invalid data may also be refused with 413: every service bounds request bodies (the
# shared middleware answers 413 problem+json before parsing), and negative generation can
# produce a body over the bound. The rest is schemathesis's default list.
CONFIG = SchemathesisConfig.from_dict(
    {
        "checks": {
            "negative_data_rejection": {
                "expected-statuses": [
                    *NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES,
                    "413",
                ]
            }
        }
    }
)


@dataclass
class FuzzRun:
    """What was run and what failed, collected over operations (reported all at once)."""

    ran: list[str] = field(default_factory=list)
    sent: int = 0
    unsatisfiable: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    wrong_types_sent: int = 0
    wrong_types_refused: int = 0


def load(url: str, *, exclude: list[tuple[str, str]]) -> Any:
    """The service's published document, without the (method, path regex) pairs given."""
    schema = schemathesis.openapi.from_url(
        f"{url}/openapi.json", config=CONFIG, timeout=REQUEST_TIMEOUT_S
    )
    for method, path_regex in exclude:
        schema = schema.exclude(method=method, path_regex=path_regex)
    return schema


def operations(schema: Any) -> list[Any]:
    return [result.ok() for result in schema.get_all_operations()]


def has_inputs(operation: Any) -> bool:
    return bool(list(operation.iter_parameters())) or bool(operation.body)


def fuzz_operation(
    operation: Any,
    mode: GenerationMode,
    base_url: str,
    headers: dict[str, str],
    examples: int,
    run: FuzzRun,
) -> None:
    """Run `examples` generated cases of one operation in one mode; a failure is noted."""

    @given(case=operation.as_strategy(generation_mode=mode, headers=headers))
    @settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
        derandomize=False,
    )
    def one(case: Any) -> None:
        run.sent += 1
        case.call_and_validate(
            base_url=base_url, excluded_checks=EXCLUDED_CHECKS, timeout=REQUEST_TIMEOUT_S
        )

    label = f"{base_url} {operation.label} [{mode.value}]"
    run.ran.append(label)
    try:
        one()
    except Unsatisfiable:
        # Negative mode cannot make an invalid value for a free-form string path
        # parameter; there is nothing invalid to send, which is not a failure.
        if mode is not GenerationMode.NEGATIVE:
            run.failures.append(f"{label}: no valid request could be generated")
        run.unsatisfiable.append(label)
    except (Exception, BaseExceptionGroup) as exc:  # collect every failure, report all
        run.failures.append(f"{label}: {exc}")


def fuzz_service(
    schema: Any,
    base_url: str,
    auth_of: Callable[[Any], dict[str, str]],
    examples: int,
    run: FuzzRun,
    *,
    negative_only: Callable[[Any], bool] = lambda _: False,
) -> None:
    """Every operation with the headers `auth_of` gives it, valid and invalid data
    (`negative_only` operations get invalid data only: valid data would change state
    every other suite shares)."""
    for operation in operations(schema):
        modes = [] if negative_only(operation) else [GenerationMode.POSITIVE]
        if has_inputs(operation):
            modes.append(GenerationMode.NEGATIVE)
        for mode in modes:
            fuzz_operation(operation, mode, base_url, auth_of(operation), examples, run)


# --- valid-but-wrong types -------------------------------------------------------------------

WRONG_TYPE_EXAMPLES = 2  # generated valid bodies per operation, each mutated at every leaf


def _wrong_types(value: Any) -> list[Any]:
    """Values of another JSON type that a lax parser would read as `value`: a boolean for
    an integer and the other way round, a numeric string, a float with the same value."""
    if isinstance(value, bool):
        return ["true" if value else "false", int(value)]
    if isinstance(value, int):
        return [str(value), float(value), value != 0]
    return []


def _leaves(body: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], Any]]:
    """The (path, value) of every integer and boolean in a JSON body (the first item of a
    list stands for the rest)."""
    if isinstance(body, dict):
        return [leaf for k, v in body.items() for leaf in _leaves(v, (*path, k))]
    if isinstance(body, list) and body:
        return _leaves(body[0], (*path, 0))
    if isinstance(body, bool | int):
        return [(path, body)]
    return []


def _replaced(body: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(body, dict):
        return {**body, head: _replaced(body[head], rest, value)}
    return [_replaced(body[0], rest, value), *body[1:]]


def _problem_fields(response: Any) -> set[str]:
    """The fields a problem+json answer names (schemathesis's headers are lists)."""
    content_type = response.headers.get("content-type") or ""
    if isinstance(content_type, list):
        content_type = content_type[0] if content_type else ""
    if not content_type.startswith("application/problem+json"):
        return set()
    errors = response.json().get("errors") or []
    return {str(e.get("field")) for e in errors if isinstance(e, dict)}


def wrong_type_operation(
    operation: Any, base_url: str, headers: dict[str, str], run: FuzzRun
) -> None:
    """Generated *valid* JSON bodies with one integer or boolean at a time replaced by a
    value of another type (`"7"`, `7.0` or `true` for 7; `"true"` or `1` for true): each
    must be refused with 400 naming that field, so nothing is written. schemathesis's own
    negative mode rarely tries exactly these."""
    label = f"{base_url} {operation.label} [wrong types]"

    @given(case=operation.as_strategy(generation_mode=GenerationMode.POSITIVE, headers=headers))
    @settings(
        max_examples=WRONG_TYPE_EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def one(case: Any) -> None:
        body = case.body
        for path, value in _leaves(body):
            for wrong in _wrong_types(value):
                case.body = _replaced(body, path, wrong)
                for name in list(case.headers or {}):
                    if name.lower() == "idempotency-key":  # each call its own key
                        case.headers[name] = uuid.uuid4().hex
                response = case.call(base_url=base_url, timeout=REQUEST_TIMEOUT_S)
                run.sent += 1
                run.wrong_types_sent += 1
                field_name = ".".join(str(p) for p in path)
                if response.status_code == 400 and field_name in _problem_fields(response):
                    run.wrong_types_refused += 1
                elif response.status_code not in (413, 429):
                    run.failures.append(
                        f"{label}: {field_name}={wrong!r} answered {response.status_code}"
                        f" {response.text[:200]}"
                    )
        case.body = body

    run.ran.append(label)
    try:
        one()
    except Unsatisfiable:
        run.unsatisfiable.append(label)
    except (Exception, BaseExceptionGroup) as exc:
        run.failures.append(f"{label}: {exc}")


def wrong_type_service(
    schema: Any,
    base_url: str,
    auth_of: Callable[[Any], dict[str, str]],
    run: FuzzRun,
    *,
    only: Callable[[Any], bool] = lambda _: True,
) -> None:
    """`wrong_type_operation` for every operation of a service (that `only` admits) that
    takes a JSON body."""
    for operation in operations(schema):
        if (
            only(operation)
            and operation.body
            and any("json" in b.media_type for b in operation.body)
        ):
            wrong_type_operation(operation, base_url, auth_of(operation), run)
