"""What wires the fair draw (issue 19) into the matcher, as pure code: the rolling window of
months, the refusal of an application decided after the freeze, the `draw.completed`
notification and `DrawCompleted` event built from one record, the CLI's verdict (the same
lines and exit codes as docs/verify_draw.py), and the other consumers of
matcher.bookings.v1 ignoring `DrawCompleted` (no handler there, so never a dead letter)."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import orjson
import pytest
from matcher.domain import fair_draw as fd
from matcher.domain.decide import decide_arrivals, posting_refusal
from matcher.domain.policy import Policy, Reason
from matcher.usecases.notifications import draw_completed

from shared.consumer import EventConsumer, RawMessage
from shared.events import DrawCompleted
from shared.topics import MATCHER_BOOKINGS
from tools.cli import verify_draw_record

from .builders import arrival, posting, seoul
from .test_fair_draw import record_of, seed_of

ROOT = Path(__file__).resolve().parents[3]
VERIFIER = ROOT / "docs" / "verify_draw.py"


@pytest.mark.parametrize(
    ("last", "count", "months"),
    [
        ("2026-03", 3, ("2026-01", "2026-02", "2026-03")),
        ("2026-01", 3, ("2025-11", "2025-12", "2026-01")),
        ("2026-12", 1, ("2026-12",)),
    ],
)
def test_the_window_is_the_close_month_and_the_ones_before_it(
    last: str, count: int, months: tuple[str, ...]
) -> None:
    assert fd.window_months(last, count) == months


def test_a_long_window_crosses_years_and_a_window_has_a_month() -> None:
    window = fd.window_months("2027-02", 14)
    assert (window[0], window[-1], len(window)) == ("2026-01", "2027-02", 14)
    assert len(set(window)) == 14
    with pytest.raises(ValueError, match="at least one month"):
        fd.window_months("2027-02", 0)


def test_an_application_decided_after_the_freeze_is_refused_applications_closed(
    policy: Policy,
) -> None:
    """Sent before the close but decided after the freeze: it is not in the frozen list,
    so it is refused `applications_closed`, never kept pending for a draw that ran without
    it; before the freeze the same arrival waits for the draw."""
    close_at = seoul(2026, 3, 3, 9)
    draw_posting = posting(selection="draw", close_at=close_at)
    sent = arrival(1, received_at=close_at - timedelta(minutes=1))
    assert posting_refusal(draw_posting, sent.received_at) is None
    frozen = replace(draw_posting, entries_frozen=True)
    assert posting_refusal(frozen, sent.received_at) is Reason.APPLICATIONS_CLOSED
    [before] = decide_arrivals(draw_posting, [sent], policy)
    [after] = decide_arrivals(frozen, [sent], policy)
    assert before.outcome == "pending"
    assert (after.outcome, after.reason) == ("rejected", Reason.APPLICATIONS_CLOSED)


def test_draw_completed_publishes_the_record_exactly_and_the_event_adds_citizens() -> None:
    """The notification's `data` is the published record (what docs/verify_draw.py reads);
    the event carries the same values and each entry's citizen (for the reports)."""
    record = record_of(seed_of(1), [fd.Entry(f"app_{i}", i * 100) for i in range(5)])
    citizens = {f"app_{i}": f"ctz_{i}" for i in range(5)}
    at = datetime(2026, 12, 8, 9, 0, 2, tzinfo=UTC)
    change = draw_completed(record, citizens, at)
    body = orjson.loads(change.note.payload)
    assert body["type"] == "draw.completed" == change.note.type
    assert body["data"] == record.to_dict()
    assert change.note.ordering_key == record.posting_id
    event = change.event
    assert isinstance(event, DrawCompleted)
    assert event.seed_hex == record.seed_hex and event.commitment == record.commitment
    assert [(e.entry_id, e.citizen_id, e.minutes_window) for e in event.entries] == [
        (e.entry_id, citizens[e.entry_id], e.minutes_window) for e in record.entries
    ]
    assert (event.confirmed, event.waitlisted, event.not_selected) == (
        list(record.confirmed),
        list(record.waitlisted),
        list(record.not_selected),
    )


def _script(data: object, *args: str) -> tuple[int, list[str]]:
    done = subprocess.run(
        [sys.executable, str(VERIFIER), *args],
        input=json.dumps(data),
        capture_output=True,
        text=True,
        check=False,
    )
    return done.returncode, done.stdout.splitlines()


def _tampered(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The honest record with one published field changed at a time."""
    out = []
    for key, value in (
        ("seed", "0" * 64),
        ("commitment", "f" * 64),
        ("entry_list_hash", "e" * 64),
        ("seats", data["seats"] + 1),
        ("half_weight_minutes", data["half_weight_minutes"] + 1),
        ("window_months", data["window_months"] + 1),
        ("drawn_at", "2020-01-01T00:00:00+00:00"),
    ):
        out.append({**data, key: value})
    entries = [dict(e) for e in data["entries"]]
    entries[0]["minutes_window"] += 600
    out.append({**data, "entries": entries})
    outcome = dict(data["outcome"])
    outcome["confirmed"] = list(reversed(outcome["confirmed"]))
    out.append({**data, "outcome": outcome})
    return out


def test_the_cli_says_what_docs_verify_draw_says_with_its_exit_codes() -> None:
    """`gwangsan draw verify` prints "verified" (0), each difference (1) or `malformed`
    (2), line for line what the standalone script prints on the same record."""
    record = record_of(seed_of(2), [fd.Entry(f"app_{i}", (i * 131) % 900) for i in range(7)])
    data = record.to_dict()
    published = ("--commitment", data["commitment"], "--entry-list-hash", data["entry_list_hash"])
    assert verify_draw_record(data, data["commitment"], data["entry_list_hash"]) == (
        0,
        ["verified"],
    )
    assert _script(data, *published) == (0, ["verified"])
    for bad in _tampered(data):
        ours = verify_draw_record(bad, data["commitment"], data["entry_list_hash"])
        assert ours[0] == 1 and ours == _script(bad, *published), bad
    malformed = {**data, "seats": 2.0}
    code, lines = verify_draw_record(malformed, None, None)
    assert code == 2 == _script(malformed)[0]
    assert lines[0].startswith("malformed: ")


@pytest.mark.parametrize("service", ["registry"])
async def test_the_other_consumers_of_bookings_ignore_draw_completed(service: str) -> None:
    """The registry reads matcher.bookings.v1; with no handler for `DrawCompleted` its
    guard answers `ignored` (not `dead_lettered`): it is a known type (shared.events)
    without a subscriber there, and nothing is written. (The allowance consumes it since
    the outcome reports, issue 19: tests/e2e/test_e2e_reports.py.)"""
    from registry.handlers import register

    consumer = EventConsumer(service=service, pool=cast(Any, None), producer=cast(Any, None))
    register(consumer, cast(Any, SimpleNamespace(now=lambda: datetime.now(UTC))))
    record = record_of(seed_of(3), [fd.Entry(f"app_{i}", 0) for i in range(3)])
    event = draw_completed(record, {f"app_{i}": f"ctz_{i}" for i in range(3)}, record.drawn_at)
    envelope = event.event.envelope(producer="matcher", occurred_at=record.drawn_at)
    message = RawMessage(MATCHER_BOOKINGS, 0, 0, b"pst_1", envelope.to_bytes())
    assert await consumer.process(message) == "ignored"
