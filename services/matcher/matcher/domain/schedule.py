"""Notices scheduled before a confirmed booking's start (issue 18): reminders (24 h and 2 h
before by default) and, where the posting asks for it, a reconfirmation request (48 h
before) with its deadline (16 h before), after which an unanswered booking is released.

Pure rules on the booking's times and what was already sent; the matcher's shared clock
says what "now" is, so a demo or a test plays them by moving the clock. Each notice is a
window `(starts_at - opens, starts_at - closes]`: open from `opens` before the start until
the next notice's window opens (a reminder that was missed while a later one is due is not
sent late), and a booking confirmed inside a window is not told about it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

# The kind of the reconfirmation request, as `booking_reminders.kind` records it.
RECONFIRM_KIND = "reconfirm_requested"


def reminder_kind(lead: timedelta) -> str:
    """The recorded kind of the reminder `lead` before the start (`reminder_1440m`)."""
    return f"reminder_{int(lead.total_seconds()) // 60}m"


@dataclass(frozen=True)
class Schedule:
    """The policy values (matcher settings): reminder leads, the reconfirmation request's
    lead and its deadline's lead, and the posting tags that require reconfirmation."""

    reminder_leads: tuple[timedelta, ...]
    reconfirm_ask_lead: timedelta
    reconfirm_deadline_lead: timedelta
    reconfirm_tags: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if any(lead <= timedelta(0) for lead in self.reminder_leads):
            raise ValueError("reminder leads must be positive")
        if not timedelta(0) < self.reconfirm_deadline_lead < self.reconfirm_ask_lead:
            raise ValueError("0 < reconfirmation deadline lead < reconfirmation request lead")

    @property
    def leads(self) -> tuple[timedelta, ...]:
        """The reminder leads, longest first, without repeats."""
        return tuple(sorted(set(self.reminder_leads), reverse=True))

    @property
    def horizon(self) -> timedelta:
        """How long before a start anything can be due."""
        return max((*self.leads, self.reconfirm_ask_lead))


@dataclass(frozen=True)
class Window:
    """A notice is due while `starts_at - opens <= now < starts_at - closes`, for a
    booking confirmed before `starts_at - opens` (store.py's query uses the same)."""

    kind: str
    opens: timedelta
    closes: timedelta
    reconfirmation: bool  # only for postings that require reconfirmation


def windows(schedule: Schedule) -> list[Window]:
    """Every notice's window: each reminder's closes when the next (shorter) one opens, the
    last at the start; the reconfirmation request's at its deadline."""
    leads = schedule.leads
    found = [
        Window(
            reminder_kind(lead), lead, leads[i + 1] if i + 1 < len(leads) else timedelta(0), False
        )
        for i, lead in enumerate(leads)
    ]
    found.append(
        Window(RECONFIRM_KIND, schedule.reconfirm_ask_lead, schedule.reconfirm_deadline_lead, True)
    )
    return found


def requires_reconfirmation(flag: bool, tags: Iterable[str], schedule: Schedule) -> bool:
    """Opt-in: the posting's own field, or one of its tags named in the policy."""
    return flag or not schedule.reconfirm_tags.isdisjoint(tags)


@dataclass(frozen=True)
class BookingTimes:
    """What the rules read of a confirmed booking. `confirmed_at` is when it became
    confirmed (booked or promoted); `asked_at` when the reconfirmation request was sent."""

    starts_at: datetime
    confirmed_at: datetime
    reconfirmation_required: bool
    asked_at: datetime | None = None
    reconfirmed_at: datetime | None = None


def _open(window: Window, booking: BookingTimes, now: datetime) -> bool:
    opens_at = booking.starts_at - window.opens
    return opens_at <= now < booking.starts_at - window.closes and booking.confirmed_at < opens_at


def notices_due(
    booking: BookingTimes, now: datetime, schedule: Schedule, sent: Collection[str]
) -> list[Window]:
    """The notices to send now (not in `sent`): at most one reminder, and the
    reconfirmation request where the posting requires it."""
    return [
        w
        for w in windows(schedule)
        if w.kind not in sent
        and (booking.reconfirmation_required or not w.reconfirmation)
        and _open(w, booking, now)
    ]


def reconfirm_deadline(starts_at: datetime, schedule: Schedule) -> datetime:
    return starts_at - schedule.reconfirm_deadline_lead


def release_due(booking: BookingTimes, now: datetime, schedule: Schedule) -> bool:
    """A booking asked to reconfirm (before its deadline) and not reconfirmed is released
    from the deadline on, never once its shift has started. One confirmed inside the
    request's window was never asked, so it counts as reconfirmed."""
    deadline = reconfirm_deadline(booking.starts_at, schedule)
    return (
        booking.reconfirmation_required
        and booking.asked_at is not None
        and booking.asked_at < deadline
        and booking.reconfirmed_at is None
        and deadline <= now < booking.starts_at
    )
