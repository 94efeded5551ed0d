"""The notices before a booking's start (matcher.domain.schedule): which reminders are
due when, the reconfirmation request and its deadline, bookings made inside a window, and
a started shift never released."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from matcher.domain.schedule import (
    RECONFIRM_KIND,
    BookingTimes,
    Schedule,
    notices_due,
    reconfirm_deadline,
    release_due,
    reminder_kind,
    requires_reconfirmation,
    windows,
)
from matcher.settings import MatcherSettings

START = datetime(2026, 6, 10, 9, 0, tzinfo=UTC)
H = timedelta(hours=1)
SCHEDULE = MatcherSettings.model_construct().schedule()
R24, R2 = reminder_kind(24 * H), reminder_kind(2 * H)


def booking(
    booked_before: timedelta,
    *,
    reconfirm: bool = False,
    asked_at: datetime | None = None,
    reconfirmed_at: datetime | None = None,
) -> BookingTimes:
    return BookingTimes(START, START - booked_before, reconfirm, asked_at, reconfirmed_at)


def due(b: BookingTimes, before_start: timedelta, sent: tuple[str, ...] = ()) -> list[str]:
    return [w.kind for w in notices_due(b, START - before_start, SCHEDULE, set(sent))]


def test_defaults_are_24h_and_2h_reminders_and_48h_16h_reconfirmation() -> None:
    assert SCHEDULE.leads == (24 * H, 2 * H)
    assert (SCHEDULE.reconfirm_ask_lead, SCHEDULE.reconfirm_deadline_lead) == (48 * H, 16 * H)
    assert SCHEDULE.reconfirm_tags == frozenset()  # opt-in: off unless a posting asks
    assert [w.kind for w in windows(SCHEDULE)] == [R24, R2, RECONFIRM_KIND]


@pytest.mark.parametrize(
    ("before_start", "expected"),
    [
        (25 * H, []),  # nothing yet
        (24 * H, [R24]),  # the window opens at exactly 24 h
        (10 * H, [R24]),  # still the 24 h reminder while the 2 h window is not open
        (2 * H, [R2]),  # the 2 h one supersedes a 24 h one never sent
        (timedelta(minutes=1), [R2]),
        (timedelta(0), []),  # started: nothing
        (-H, []),
    ],
)
def test_which_reminder_is_due_when(before_start: timedelta, expected: list[str]) -> None:
    assert due(booking(7 * 24 * H), before_start) == expected


def test_each_reminder_once() -> None:
    b = booking(7 * 24 * H)
    assert due(b, 23 * H, sent=(R24,)) == []
    assert due(b, H, sent=(R24, R2)) == []
    assert due(b, H, sent=(R24,)) == [R2]


def test_booked_inside_a_window_is_not_reminded_of_it() -> None:
    b = booking(10 * H)  # booked 10 h before: only the 2 h reminder
    assert due(b, 9 * H) == []
    assert due(b, 2 * H) == [R2]
    late = booking(H)  # booked inside the last window: no reminder at all
    assert due(late, timedelta(minutes=30)) == []


def test_reconfirmation_only_when_the_posting_requires_it() -> None:
    assert due(booking(7 * 24 * H), 47 * H) == []
    assert due(booking(7 * 24 * H, reconfirm=True), 47 * H) == [RECONFIRM_KIND]
    assert due(booking(7 * 24 * H, reconfirm=True), 20 * H) == [R24, RECONFIRM_KIND]
    # past the deadline it is not asked any more (there would be no time to answer)
    assert due(booking(7 * 24 * H, reconfirm=True), 16 * H) == [R24]


def test_requires_reconfirmation_by_flag_or_policy_tag() -> None:
    tagged = Schedule((24 * H,), 48 * H, 16 * H, frozenset({"야간"}))
    assert requires_reconfirmation(True, [], SCHEDULE)
    assert not requires_reconfirmation(False, ["야간"], SCHEDULE)
    assert requires_reconfirmation(False, ["공원", "야간"], tagged)


def test_release_at_the_deadline_when_asked_and_not_reconfirmed() -> None:
    asked = booking(7 * 24 * H, reconfirm=True, asked_at=START - 48 * H)
    assert reconfirm_deadline(START, SCHEDULE) == START - 16 * H
    assert not release_due(asked, START - 17 * H, SCHEDULE)
    assert release_due(asked, START - 16 * H, SCHEDULE)
    assert release_due(asked, START - H, SCHEDULE)


def test_a_started_shift_is_never_released() -> None:
    asked = booking(7 * 24 * H, reconfirm=True, asked_at=START - 48 * H)
    assert not release_due(asked, START, SCHEDULE)
    assert not release_due(asked, START + H, SCHEDULE)


def test_reconfirmed_or_never_asked_is_kept() -> None:
    reconfirmed = booking(
        7 * 24 * H, reconfirm=True, asked_at=START - 48 * H, reconfirmed_at=START - 30 * H
    )
    assert not release_due(reconfirmed, START - 10 * H, SCHEDULE)
    # booked inside the 48 h window: never asked, so treated as reconfirmed
    inside = booking(30 * H, reconfirm=True)
    assert due(inside, 29 * H) == []
    assert not release_due(inside, START - 10 * H, SCHEDULE)
    # asked only after the deadline (a sweep that was down): never released for it
    late_ask = booking(7 * 24 * H, reconfirm=True, asked_at=START - 15 * H)
    assert not release_due(late_ask, START - 10 * H, SCHEDULE)
    # a posting that does not require it never releases
    assert not release_due(booking(7 * 24 * H, asked_at=START - 48 * H), START - H, SCHEDULE)


def test_windows_must_make_sense() -> None:
    with pytest.raises(ValueError, match="deadline"):
        Schedule((24 * H,), 16 * H, 48 * H)
    with pytest.raises(ValueError, match="positive"):
        Schedule((timedelta(0),), 48 * H, 16 * H)


def test_reminders_can_be_turned_off() -> None:
    off = MatcherSettings.model_construct(reminder_leads_minutes="").schedule()
    assert [w.kind for w in windows(off)] == [RECONFIRM_KIND]
