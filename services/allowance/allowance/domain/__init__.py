"""The allowance service's rules, as plain Python: no I/O, no framework, no database.

- `calendar`: Seoul business dates: months (periods), fiscal years, ISO weeks.
- `policy`: the rate table, statutory minimum wages and caps, with their validation.
- `money`: payout arithmetic (integer won, floor), reservations, the monthly cap split.
- `budget`: reservation decisions and where a payout's money is drawn from.
- `ledger`: the chart of accounts and every kind of ledger transaction with its legs.
"""
