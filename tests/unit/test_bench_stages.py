"""The latency benchmark's split of the slowest 1 %: answer, wait for the decision's
transaction, and — where Postgres keeps commit timestamps — the batch up to its commit and
the send after it."""

from __future__ import annotations

from bench.matcher_bench import _slowest_stages


def _run(n: int = 200) -> tuple[dict[str, float], ...]:
    # Application i: answered in 5 ms, its decision's transaction began at 20 + i ms,
    # committed 8 ms later, reached the partner 4 ms after that.
    total = {f"a{i}": 20.0 + i + 8 + 4 for i in range(n)}
    answered = {f"a{i}": 5.0 for i in range(n)}
    began = {f"a{i}": 20.0 + i for i in range(n)}
    committed = {f"a{i}": 28.0 + i for i in range(n)}
    return total, answered, began, committed


def test_the_slowest_are_split_at_the_transactions_start_and_its_commit() -> None:
    total, answered, began, committed = _run()
    stages = _slowest_stages(total, answered, began, committed)
    # The slowest 1 % of 200 are the last two (i = 198, 199): medians of their stages.
    assert stages == {
        "total": 230.5,
        "answer": 5.0,
        "answer_to_decision": 213.5,
        "decision_to_partner": 12.0,
        "decision_to_commit": 8.0,
        "commit_to_partner": 4.0,
    }


def test_without_commit_times_the_split_stops_at_the_transactions_start() -> None:
    total, answered, began, _ = _run()
    stages = _slowest_stages(total, answered, began, {})
    assert set(stages) == {"total", "answer", "answer_to_decision", "decision_to_partner"}
    assert stages["decision_to_partner"] == 12.0


def test_an_application_without_its_decision_times_gives_no_split() -> None:
    total, answered, began, committed = _run()
    del began["a199"]
    assert _slowest_stages(total, answered, began, committed) == {}
