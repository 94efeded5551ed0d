"""The seeded, weighted, reproducible draw of a `draw` posting (BRIEF §4.3).

Weighted sampling without replacement by Efraimidis–Spirakis: each entry gets a uniform
number u in (0, 1) and the key log(u) / weight; the ranking is by key, highest first.
Entries with more weight tend to rank higher, and the result has exactly the distribution of
drawing one by one with probability proportional to weight among those left.

Reproducible: u is derived from HMAC-SHA256(seed, application id), not from a random
generator's state, so the ranking depends only on the seed and the inputs, not on their
order; weights are recomputed from the stored integer minutes, so the same IEEE-754
arithmetic gives the same keys. An auditor given the stored seed and inputs recomputes the
same outcome (`GET /v1/admin/draws/{posting_id}`, `POST .../verify`).

Weighting: weight = H / (H + minutes), where minutes are the citizen's allowance minutes in
the month of the draw and H is `draw_half_weight_minutes`: a citizen with H minutes this
month weighs half as much as one with none, so the allowance is spread.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

ALGORITHM = "efraimidis-spirakis/hmac-sha256/v1"


@dataclass(frozen=True)
class DrawEntry:
    application_id: str
    citizen_id: str
    minutes_month: int


@dataclass(frozen=True)
class DrawOutcome:
    ranking: tuple[str, ...]  # every entry, best first
    confirmed: tuple[str, ...]
    waitlisted: tuple[str, ...]
    not_selected: tuple[str, ...]

    def as_record(self) -> dict[str, list[str]]:
        """The outcome as the draw's audit record stores it (and a verify compares)."""
        return {
            "ranking": list(self.ranking),
            "confirmed": list(self.confirmed),
            "waitlisted": list(self.waitlisted),
            "not_selected": list(self.not_selected),
        }


def new_salt() -> str:
    return secrets.token_hex(16)


def make_seed(posting_id: str, salt: str) -> str:
    """The seed of a posting's draw: fixed by the posting and a random salt stored with it."""
    return hashlib.sha256(f"{posting_id}:{salt}".encode()).hexdigest()


def draw_weight(minutes_month: int, half_weight_minutes: int) -> float:
    if minutes_month < 0:
        raise ValueError("minutes cannot be negative")
    return half_weight_minutes / (half_weight_minutes + minutes_month)


def uniform(seed: str, application_id: str) -> float:
    """A number in (0, 1) fixed by the seed and the application (never 0, so log is finite)."""
    digest = hmac.new(seed.encode(), application_id.encode(), hashlib.sha256).digest()
    return (int.from_bytes(digest[:8], "big") + 0.5) / 2**64


def draw_ranking(seed: str, entries: Sequence[DrawEntry], half_weight_minutes: int) -> list[str]:
    """Application ids ranked by the weighted draw, best first (ties by id)."""
    keyed = [
        (
            math.log(uniform(seed, e.application_id))
            / draw_weight(e.minutes_month, half_weight_minutes),
            e.application_id,
        )
        for e in entries
    ]
    keyed.sort(key=lambda k: (-k[0], k[1]))
    return [application_id for _, application_id in keyed]


def run_draw(
    seed: str,
    entries: Sequence[DrawEntry],
    *,
    seats: int,
    waitlist_room: int,
    half_weight_minutes: int,
) -> DrawOutcome:
    """Rank the entries; the first `seats` are confirmed, the next `waitlist_room`
    waitlisted in rank order, the rest not selected."""
    if len({e.application_id for e in entries}) != len(entries):
        raise ValueError("an application can enter a draw once")
    ranking = draw_ranking(seed, entries, half_weight_minutes)
    seats = max(seats, 0)
    room = max(waitlist_room, 0)
    return DrawOutcome(
        ranking=tuple(ranking),
        confirmed=tuple(ranking[:seats]),
        waitlisted=tuple(ranking[seats : seats + room]),
        not_selected=tuple(ranking[seats + room :]),
    )


@dataclass(frozen=True)
class Verification:
    """A stored draw re-run from its seed and inputs."""

    seed_matches: bool
    matches: bool
    recomputed: dict[str, list[str]]


def verify(
    posting_id: str,
    salt: str,
    seed: str,
    entries: Sequence[DrawEntry],
    *,
    seats: int,
    waitlist_room: int,
    half_weight_minutes: int,
    outcome: dict[str, list[str]],
) -> Verification:
    """Re-run a stored draw; say whether its seed and its outcome match."""
    recomputed = run_draw(
        make_seed(posting_id, salt),
        entries,
        seats=seats,
        waitlist_room=waitlist_room,
        half_weight_minutes=half_weight_minutes,
    ).as_record()
    seed_matches = make_seed(posting_id, salt) == seed
    return Verification(seed_matches, seed_matches and recomputed == outcome, recomputed)
