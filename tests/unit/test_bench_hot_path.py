"""`bench.hot_path` drives the matcher's real webhook path and the baseline in process."""

from __future__ import annotations

from bench import hot_path


async def test_a_short_run_answers_every_webhook_202_and_reports_both_costs() -> None:
    """Every request of both apps is answered 202 (a round raises otherwise), and the
    figures are the two CPU costs a request and their ratio."""
    out = await hot_path.run(rounds=2, n=40)
    assert out["matcher_us"] > 0 and out["baseline_us"] > 0
    assert 0 < out["ratio_range"][0] <= out["ratio"] <= out["ratio_range"][1]
