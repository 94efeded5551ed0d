"""The bench's host reading and its capacity steps: runs on hosts of different speeds stay
comparable, and a host too slow for 500/s still gets a capacity figure."""

from __future__ import annotations

from bench import host, report
from bench.matcher_bench import next_capacity_rate


def test_the_calibration_times_a_fixed_workload_and_scales_with_it() -> None:
    """A positive time that grows with the rounds (the workload is fixed per round)."""
    small, large = host.calibration_ms(200), host.calibration_ms(2_000)
    assert 0 < small < large


def test_the_reading_names_the_host() -> None:
    machine = host.reading()
    assert machine["cpus"] >= 1
    assert isinstance(machine["cpu_model"], str)
    assert machine["calibration_ms"] > 0


def test_the_caption_shows_the_calibration_and_reads_older_result_files() -> None:
    new = {"cpus": 2, "python": "3.11.7", "cpu_model": "AMD EPYC", "calibration_ms": 1332.2}
    assert report._host(new) == (
        "2 cores (AMD EPYC), Python 3.11.7, host calibration 1,332.2 ms (lower is faster)"
    )
    # Result files written before the reading existed had only cores and Python.
    assert report._host({"cpus": 2, "python": "3.11.7"}) == "2 cores, Python 3.11.7"


def steps(outcomes: dict[float, bool], quick: bool = False) -> list[float]:
    """The rates a step test visits when each rate holds as `outcomes` says."""
    visited: list[float] = []
    rate: float | None = 500.0
    while rate is not None:
        visited.append(rate)
        rate = next_capacity_rate(rate, outcomes[rate], quick)
    return visited


def test_capacity_doubles_from_500_until_a_step_fails() -> None:
    held = {500.0: True, 1_000.0: True, 2_000.0: False}
    assert steps(held) == [500.0, 1_000.0, 2_000.0]
    everything = dict.fromkeys([500.0, 1_000.0, 2_000.0, 4_000.0, 8_000.0], True)
    assert steps(everything) == [500.0, 1_000.0, 2_000.0, 4_000.0, 8_000.0]
    assert steps(everything, quick=True) == [500.0, 1_000.0, 2_000.0]


def test_capacity_halves_below_500_until_a_step_holds() -> None:
    assert steps({500.0: False, 250.0: True}) == [500.0, 250.0]
    never = dict.fromkeys([500.0, 250.0, 125.0, 62.5], False)
    assert steps(never) == [500.0, 250.0, 125.0, 62.5]
