"""The benchmark report: the table in docs/performance.md is rendered from a results file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import report

RESULTS = sorted(p for p in report.RESULTS.glob("*.json") if "-" not in p.stem[10:])


def test_the_committed_results_render_the_table_with_every_figure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The newest committed full run renders a row for each benchmark of issue 8, with the
    ingest ratio computed from the two rates of the same run; rewriting a document replaces
    only the block between the markers."""
    assert RESULTS, "no full-run results committed under bench/results/"
    outcome = json.loads(RESULTS[-1].read_text())
    rows = report.rows(outcome)
    labels = [row[0] for row in rows]
    for wanted in ("Ingest req/s (1 matcher)", "Webhook→partner", "Rush:", "Month close:",
                   "Scale-out"):  # fmt: skip
        assert any(label.startswith(wanted) for label in labels), wanted
    ingest = rows[labels.index("Ingest req/s (1 matcher)")]
    m = outcome["results"]["ingest"]["matcher"]["rps"]
    b = outcome["results"]["ingest"]["baseline"]["rps"]
    assert ingest[3] == f"{m / b:.2f}"
    doc = tmp_path / "performance.md"
    doc.write_text(f"# P\n\nbefore\n\n{report.START}\nold\n{report.END}\n\nafter\n")
    monkeypatch.setattr(report, "DOC", doc)
    report.update_docs(outcome, RESULTS[-1])
    text = doc.read_text()
    assert "old" not in text and "before" in text and "after" in text
    assert report.table(rows) in text


def test_the_rush_row_says_how_busy_the_machine_was() -> None:
    """The rush's census (whole rush and after the last 202) is read into its row; a run
    without one (not Linux, or an older results file) leaves the cell empty."""
    cpu = {"machine_busy_pct": 183.4, "of_pct": 200}
    tail = {"machine_busy_pct": 141.0, "of_pct": 200}
    assert report._rush_cpu({"cpu": cpu, "cpu_after_last_202": tail}) == (
        "machine 183 % of 200 % busy (141 % after the last 202)"
    )
    assert report._rush_cpu({"cpu": cpu}) == "machine 183 % of 200 % busy"
    assert report._rush_cpu({}) == ""


def test_the_ingest_cpu_row_is_the_baselines_cpu_a_request_over_ours() -> None:
    """The served process's CPU a request, ours and the baseline's, and their ratio; an
    older results file without the figures leaves dashes."""
    ingest = {
        "matcher": {"rps": 2000.0, "cpu_ms_per_request": 0.4},
        "baseline": {"rps": 4000.0, "cpu_ms_per_request": 0.25},
    }
    rows = report.rows({"results": {"ingest": ingest}})
    row = next(r for r in rows if r[0].startswith("Ingest CPU ms a request, served process (1"))
    assert row[1:4] == ["0.4", "0.25", "0.62"]
    old = report.rows({"results": {"ingest": {"matcher": {"rps": 1.0}, "baseline": {"rps": 1.0}}}})
    row = next(r for r in old if r[0].startswith("Ingest CPU ms a request, served process (1"))
    assert row[1:4] == ["—", "—", "—"]
