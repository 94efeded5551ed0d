"""What the registry does, one module per flow and one function per command or event.

- `facilities`: register a facility, rotate its key, suspend it, authenticate a key.
- `postings`: price a shift, post it (with an Idempotency-Key), change it, cancel it.
- `idempotency`: run a facility POST once per Idempotency-Key; purge old answers.
- `saga`: the budget answers of allowance (BudgetReserved/Rejected/Released/Exhausted).
- `roster`: the matcher's booking events into the roster read model.
- `rates`: the allowance's rate table (RatesChanged) into the copy a shift is priced with.
- `attendance`: record and correct attendance.
- `closing`: close postings whose attendance window has passed (the sweeper's work).

Each function is one transaction: a command opens its own (retried on serialization
conflicts), an event runs in the consumer guard's, which also records the event id. The
events a change causes are written to the outbox (`store.emit`) in that same transaction.
A rule's refusal (`domain.errors.Refusal`) leaves a use case as the problem+json answer it
names (`refused`).
"""

from __future__ import annotations

from registry.domain.errors import Refusal
from shared.problems import Problem


def refused(exc: Refusal) -> Problem:
    """The answer to a request the rules refused: the refusal's status, code and fields."""
    return Problem(
        exc.status, exc.code, exc.detail, errors=[e.as_dict() for e in exc.errors] or None
    )
