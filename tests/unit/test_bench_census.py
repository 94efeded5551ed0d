"""The latency benchmark names what happened in each second over the floor: the census
sums /proc samples over a window, and a slow second is read against the run's typical one."""

from __future__ import annotations

from typing import Any

import pytest

from bench import census as census_mod
from bench.census import Census, Sample
from bench.matcher_bench import _reading, _typical


def _census() -> Census:
    hz = census_mod.TICKS_PER_S
    c = Census(interval_s=0.25, cores=2, available=True)
    c.groups = {"10": "matcher worker", "20": "postgres", "30": "postgres"}
    # One second apart: the worker used half a core, postgres 0.3 + 0.2, the machine 1.2
    # cores busy and 0.1 stolen.
    # Some task waited 40 ms for the disk and 300 ms for a core (PSI, in microseconds).
    c.samples = [
        Sample(100.0, (0, 0, 0), {"10": 0, "20": 0, "30": 0}, 1_000_000, 5_000_000),
        Sample(101.0, (int(1.2 * hz), int(0.1 * hz), 2 * hz), {"10": hz // 2, "20": int(0.3 * hz), "30": int(0.2 * hz)}, 1_040_000, 5_300_000),
    ]  # fmt: skip
    return c


def test_a_window_is_each_groups_share_of_a_core_and_the_machines_busy_and_steal() -> None:
    w = _census().window(100.0, 101.0)
    assert w is not None
    assert w["machine_busy_pct"] == pytest.approx(120, abs=1)
    assert w["steal_pct"] == pytest.approx(10, abs=1)
    assert w["of_pct"] == 200
    assert w["by_group_pct"] == {"matcher worker": 50.0, "postgres": 50.0}
    assert w["io_wait_ms_per_s"] == pytest.approx(40, abs=0.1)
    assert w["cpu_wait_ms_per_s"] == pytest.approx(300, abs=0.1)


def test_a_groups_cpu_seconds_are_its_processes_ticks_from_the_first_sample_to_the_last() -> None:
    """The ingest run's CPU per request: a group's CPU over the whole census, processes
    started after the first sample counted from zero."""
    c = _census()
    assert c.cpu_seconds("postgres") == pytest.approx(0.5)
    assert c.cpu_seconds("matcher worker") == pytest.approx(0.5)
    hz = census_mod.TICKS_PER_S
    c.groups["40"] = "postgres"
    c.samples[-1].ticks["40"] = hz // 4  # a backend opened during the run
    assert c.cpu_seconds("postgres") == pytest.approx(0.75)
    assert c.cpu_seconds("kafka") == 0.0
    assert Census().cpu_seconds("postgres") == 0.0  # no samples


def test_the_ingest_baseline_is_a_group_of_its_own() -> None:
    """`python -m bench.baseline` is not the bench's own process (`-m bench`)."""
    names = [name for name, _ in census_mod.GROUPS]
    assert names.index("ingest baseline") < names.index("bench")


def test_without_pressure_counters_a_window_has_no_wait_figures() -> None:
    c = _census()
    c.samples = [Sample(s.at, s.machine, s.ticks) for s in c.samples]  # a kernel without PSI
    w = c.window(100.0, 101.0)
    assert w is not None
    assert w["io_wait_ms_per_s"] is None and w["cpu_wait_ms_per_s"] is None
    assert _reading(_second(cpu={"io_wait_ms_per_s": None}), _typical([_second()]))[0] == "ordinary"


def test_a_window_without_two_samples_in_it_is_none() -> None:
    assert _census().window(500.0, 501.0) is None


def _second(**over: Any) -> dict[str, Any]:
    cpu = {
        "machine_busy_pct": 150.0,
        "steal_pct": 0.0,
        "io_wait_ms_per_s": 2.0,
        "cpu_wait_ms_per_s": 400.0,
        "of_pct": 200,
        "by_group_pct": {"matcher worker": 45.0, "postgres": 35.0},
    }
    cpu.update(over.pop("cpu", {}))
    return {"kafka_probe_max_ms": 3.0, "batches": 200, "largest_batch": 12, "cpu": cpu} | over


def test_the_typical_second_is_the_median_of_every_second() -> None:
    seconds = [_second(), _second(largest_batch=40), _second(cpu={"machine_busy_pct": 190.0})]
    typical = _typical(seconds)
    assert typical["largest_batch"] == 12
    assert typical["machine_busy_pct"] == 150.0
    assert typical["by_group_pct"]["matcher worker"] == 45.0


@pytest.mark.parametrize(
    ("second", "kind"),
    [
        (_second(kafka_probe_max_ms=45.0, cpu={"io_wait_ms_per_s": 120.0}), "disk"),
        (_second(kafka_probe_max_ms=45.0), "stall"),
        (_second(cpu={"steal_pct": 25.0}), "host"),
        (_second(cpu={"machine_busy_pct": 196.0}), "saturated"),
        # On saturated cores the raw round trip beside the run is late too: not a stall.
        (_second(kafka_probe_max_ms=45.0, cpu={"machine_busy_pct": 196.0}), "saturated"),
        (_second(cpu={"by_group_pct": {"matcher worker": 45.0, "postgres": 70.0}}), "busier"),
        (_second(largest_batch=30), "batch"),
        (_second(), "ordinary"),
    ],
)
def test_a_slow_second_is_read_by_the_first_figure_out_of_the_ordinary(
    second: dict[str, Any], kind: str
) -> None:
    typical = _typical([_second()])
    got, sentence = _reading(second, typical)
    assert got == kind
    assert sentence


def test_an_ordinary_second_of_a_run_slow_throughout_says_so() -> None:
    typical = _typical([_second()])
    _, alone = _reading(_second(), typical)
    typical["p99_ms"] = 90.0  # the median second of the run is itself over the floor
    kind, sentence = _reading(_second(), typical)
    assert kind == "ordinary" and "most seconds of this run" in sentence
    assert "most seconds" not in alone


def _fake_proc(root: Any, *, process_ticks: int, jit_ticks: int) -> None:
    """A /proc with one Kafka broker (pid 50): its main thread and a C2 compiler thread."""

    def stat(ticks: int) -> str:
        # pid (comm) state, then fields 4..: utime is the 14th field, stime the 15th.
        return "50 (java) S " + " ".join(["0"] * 10) + f" {ticks} 0 " + " ".join(["0"] * 30)

    (root / "50" / "task" / "51").mkdir(parents=True, exist_ok=True)
    (root / "50" / "task" / "52").mkdir(parents=True, exist_ok=True)
    (root / "50" / "cmdline").write_bytes(b"java\0-cp\0kafka.jar\0kafka.Kafka\0server.properties")
    (root / "50" / "environ").write_bytes(b"")
    (root / "50" / "stat").write_text(stat(process_ticks))
    (root / "50" / "task" / "51" / "comm").write_text("C2 CompilerThre\n")
    (root / "50" / "task" / "51" / "stat").write_text(stat(jit_ticks))
    (root / "50" / "task" / "52" / "comm").write_text("data-plane-kafk\n")
    (root / "50" / "task" / "52" / "stat").write_text(stat(process_ticks - jit_ticks))
    (root / "stat").write_text(f"cpu {process_ticks} 0 0 1000 0 0 0 0 0 0\n")


def test_kafkas_jit_compiler_is_counted_apart_from_the_rest_of_kafka(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    hz = census_mod.TICKS_PER_S
    monkeypatch.setattr(census_mod, "PROC", tmp_path)
    c = Census(interval_s=0.25, cores=2, available=True)
    _fake_proc(tmp_path, process_ticks=0, jit_ticks=0)
    first = c._sample()
    # One second later the broker used 0.7 of a core, 0.4 of it compiling.
    _fake_proc(tmp_path, process_ticks=int(0.7 * hz), jit_ticks=int(0.4 * hz))
    second = c._sample()
    c.samples = [
        Sample(100.0, first.machine, first.ticks),
        Sample(101.0, second.machine, second.ticks),
    ]
    w = c.window(100.0, 101.0)
    assert w is not None
    assert w["by_group_pct"] == {"kafka jit": 40.0, "kafka": 30.0}
