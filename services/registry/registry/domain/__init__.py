"""The registry's rules as pure code: no I/O, no frameworks. Times are aware datetimes and
every bound comes in as an argument from the settings.

- `errors`: a field error and a refusal (what a rule says when it says no).
- `ids`: prefixed ids (`fac_…`, `pst_…`).
- `facilities`: kinds, dongs, the child-safety floor, when a facility key admits a request.
- `postings`: the state machine, a shift's terms (BRIEF §5), the rules of a change (PATCH),
  cancelling.
- `budget`: what a budget answer (allowance.budget.v1) does to a posting; reverting a
  refused change.
- `attendance`: the window, minutes, corrections, and the plan of one attendance request.
- `idempotency`: when two requests under one Idempotency-Key are "the same".
"""
