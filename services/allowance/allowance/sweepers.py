"""The allowance's timers, run periodically on the shared clock.

- budget-metrics: the budget gauges (total and available per fiscal year), a view for
  dashboards and alerts; the ledger is the truth.
"""

from __future__ import annotations

from allowance import views
from allowance.settings import Context
from shared.service import SweeperSpec

# Budget gauges are a view for dashboards and alerts, refreshed every 15 s (the scrape
# interval of deploy/prometheus); the ledger is the truth.
BUDGET_METRICS_INTERVAL_MS = 15_000


async def refresh_budget_metrics(ctx: Context) -> None:
    await views.refresh_budget_metrics(ctx)


SWEEPERS = (SweeperSpec("budget-metrics", refresh_budget_metrics, BUDGET_METRICS_INTERVAL_MS),)
