"""What the allowance service does, one module per flow, one function per cause: an event
consumed or a command from the admin or finance API.

- `reservations`: the posting saga (submitted, updated, ended → reserve, move, release).
- `payouts`: attendance → ledger, within the monthly cap.
- `periods`: month close and mark paid.
- `policy`: rates, minimum wages, caps and the budget (the admin writes).
- `payees`: payee details written sealed, with their audit rows.
- `reports`: the facts the outcome reports need beyond the ledger (places, applicants, draws).

An event's use case runs inside the consumer guard's transaction, on the `Store` the
handler wraps around the guard's connection; an API command opens its own transaction.
Either way the use case takes its locks in the order `store` documents, asks the domain
what to do, writes the ledger and its own state, and puts the resulting events in the
outbox — all or nothing. Every ledger transaction carries the id of its cause; events it
emits get ids derived from that cause, so a retried cause never produces a second,
different event.
"""

from __future__ import annotations

from allowance.store import Store
from allowance.usecases import payees, payouts, periods, policy, reports, reservations
from allowance.usecases.common import Deps, UnknownPostingError, deps_of

__all__ = [
    "Deps",
    "Store",
    "UnknownPostingError",
    "deps_of",
    "payees",
    "payouts",
    "periods",
    "policy",
    "reports",
    "reservations",
]
