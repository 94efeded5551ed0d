"""Driving schemathesis without its pytest plugin (which fails on pytest 9: it reads a
removed node attribute): each operation's strategy is run with hypothesis directly, and
every case goes through schemathesis's checks (no 5xx, status codes, content types, bodies
and headers as documented, invalid data refused).

The check "valid data is always accepted" is left out: the schema promises shape, while
business rules (a shift in the past, an unknown id) refuse well-shaped requests with
documented 4xx.
"""

from __future__ import annotations

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
