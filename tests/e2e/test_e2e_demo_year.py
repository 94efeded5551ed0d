"""The pilot year's machinery (tools/demo/year.py) for two months on the running stack, fair
draw only (the twelve-month year with its counterfactual is `make demo-year`, minutes long,
not part of `make test`): the months are played, closed and marked paid, the budget is
appropriated then amended, and the outcome report of the two months counts what the play
recorded."""

from __future__ import annotations

import pytest

from tools.api_client import Api, Endpoints, http_client
from tools.demo.play import CONCURRENCY_MAX
from tools.demo.year import YearPlayer, make_year

pytestmark = [pytest.mark.stack, pytest.mark.slow]


async def test_two_months_of_the_year_are_played_and_reported(
    stack_env: dict[str, str], sim_url: str
) -> None:
    """Two months: each closed and marked paid (the budget set as the year sets it); the
    report by month has both months, and its attendance, draws and first-timers equal the
    play's own record."""
    async with http_client(timeout_s=60, connections_max=64) as http:
        api = Api(
            Endpoints.from_env(stack_env, sim_url=sim_url),
            http=http,
            concurrency_max=CONCURRENCY_MAX,
        )
        year = make_year(7, await api.clock.get(), 2)
        run = await YearPlayer(api, year, "fair", lambda line: None).play()
        report = await api.finance.outcome_report(run.first_period, run.last_period, "month")
    assert isinstance(report, dict)
    assert run.paid_months == 2 and len(run.outcomes) == 2
    assert [g["key"] for g in report["groups"]] == [year.period(0), year.period(1)]
    for month, out in zip(report["groups"], run.outcomes, strict=True):
        attended = [a for a in out.attendance if a["status"] == "attended"]
        assert month["attended"] == len(attended)
        assert month["no_shows"] == len(out.attendance) - len(attended)
        assert month["citizens_served"] == len({a["citizen_id"] for a in attended})
        draws = [p for p in out.plan.postings if p.selection == "draw"]
        assert month["draws"] == len(draws)
    total = report["total"]
    served = {
        a["citizen_id"] for o in run.outcomes for a in o.attendance if a["status"] == "attended"
    }
    assert total["first_time_citizens"] == len(served) == total["citizens_served"]
    assert total["allowance_paid_won"] > 0 and 0 <= total["gini_allowance"] < 1
