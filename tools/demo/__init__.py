"""The demo: a month of the Danggeun Gwangsan programme played on the running stack.

`python -m tools.demo run` (`make run`) starts what is not running, plays the month, prints a
programme manager's summary and serves until Ctrl-C; `python -m tools.demo check`
(`make demo`) plays the same month, checks the invariants and that the summary agrees with
the ledger export, and exits 0 or 1. Everything is derived from `--seed` and the shared
clock's "now", so the scenario can be played again on the same stack (a later month).

`scenario` plans the month (pure, deterministic); `play` drives the services through their
HTTP APIs and signed partner webhooks only, and measures what happened.
"""
