"""The outcome report's arithmetic (issue 19): how the allowance spread over citizens and how
the draws treated their entrants. Pure: the facts come in as small records read from the
ledger's payout lines and the events the allowance consumes; nothing here is a second
bookkeeping of money, it only sums and compares what the ledger already holds.

Definitions (docs/fairness.md §9 says the same for readers):
- a group is a facility, a dong or a Seoul month (of the shift's start);
- `seats_filled` are the bookings whose attendance was recorded (attended or no-show), i.e.
  the seats held when the shift began; a shift is `filled` when they reach its capacity;
- `first_time_citizens` worked their first attended shift ever in the group;
- `applicants` applied (or entered a draw) for a shift of the group; `first_shift_share` is
  the share of them who worked at least one shift of the group;
- the Gini coefficient is over every citizen who applied or was paid in the group, each
  with the allowance accrued for the group's shifts (zero for those who got none), so a
  scheme that pays few citizens a lot scores high (`gini_allowance_paid` is the same over
  the paid citizens only: how evenly those who worked shared the money);
- a draw's selection probabilities are each entrant's chance of a seat under the draw's
  weights (Efraimidis–Spirakis keys, equivalent to drawing one at a time proportionally to
  weight among those left): exact for short lists, else a seeded Monte Carlo estimate.
"""

from __future__ import annotations

import hashlib
import heapq
import math
import random
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Literal

GroupBy = Literal["facility", "dong", "month"]
UNKNOWN_GROUP = "(미상)"  # postings consumed before places were stored (no facility known)


def gini(amounts_won: Sequence[int]) -> float:
    """The Gini coefficient of non-negative amounts: 0 when everyone has the same (also for
    nobody, or everyone at zero), approaching 1 when one has everything; it is at most
    1 − 1/n for n people, so always in [0, 1).

    Sorted-rank form, G = (2·Σ i·x₍ᵢ₎ − (n+1)·Σx) / (n·Σx), computed on integers and divided
    once, so equal inputs give exactly 0 and the result does not depend on input order."""
    if any(a < 0 for a in amounts_won):
        raise ValueError("amounts must not be negative")
    n = len(amounts_won)
    total = sum(amounts_won)
    if n == 0 or total == 0:
        return 0.0
    ranked = sorted(amounts_won)
    weighted = sum(i * x for i, x in enumerate(ranked, start=1))
    return float(Fraction(2 * weighted - (n + 1) * total, n * total))


def share(part: int, whole: int) -> float | None:
    """`part / whole`, or None when there is nothing to divide (a rate of nothing is not 0)."""
    if whole == 0:
        return None
    return part / whole


def draw_weight(minutes_window: int, half_weight_minutes: int) -> float:
    """The draw's weight of an entry, exactly as the matcher computes it (docs/fairness.md
    §3): H / (H + minutes), one IEEE-754 division of two integers."""
    return half_weight_minutes / (half_weight_minutes + minutes_window)


# --- selection probabilities of a draw ---------------------------------------------------


@dataclass(frozen=True)
class Probabilities:
    """Each entrant's chance of a seat, in entry order, and how it was found."""

    values: tuple[float, ...]
    method: str  # "exact" or "monte_carlo/<rounds>"

    @property
    def minimum(self) -> float | None:
        return min(self.values) if self.values else None

    @property
    def maximum(self) -> float | None:
        return max(self.values) if self.values else None


def inclusion_exact(weights: Sequence[float], seats: int) -> tuple[float, ...]:
    """P(entry i gets one of `seats`) under successive sampling proportional to weight
    without replacement, by summing over every set of entries still left (2ⁿ states: call it
    only for short lists). Each state's probability is the sum over the ways to reach it."""
    n = len(weights)
    if seats >= n:
        return tuple(1.0 for _ in weights)
    if seats <= 0:
        return tuple(0.0 for _ in weights)
    full = (1 << n) - 1
    reach: dict[int, float] = {full: 1.0}  # remaining set -> probability of reaching it
    chosen = [0.0] * n
    for _ in range(seats):
        following: dict[int, float] = defaultdict(float)
        for remaining, p in reach.items():
            left = [i for i in range(n) if remaining >> i & 1]
            total = sum(weights[i] for i in left)
            for i in left:
                q = p * weights[i] / total
                chosen[i] += q
                following[remaining & ~(1 << i)] += q
        reach = following
    return tuple(min(c, 1.0) for c in chosen)


def inclusion_monte_carlo(
    weights: Sequence[float], seats: int, rounds: int, seed: int
) -> tuple[float, ...]:
    """The same probabilities estimated by replaying the draw `rounds` times with
    Efraimidis–Spirakis keys ln(u)/w from a seeded generator (standard error at most
    0.5/√rounds per entry)."""
    n = len(weights)
    if seats >= n:
        return tuple(1.0 for _ in weights)
    if seats <= 0 or rounds <= 0:
        return tuple(0.0 for _ in weights)
    rng = random.Random(seed)
    wins = [0] * n
    for _ in range(rounds):
        keys = [math.log(1.0 - rng.random()) / w for w in weights]  # 1 − U is in (0, 1]
        for i in heapq.nlargest(seats, range(n), key=keys.__getitem__):
            wins[i] += 1
    return tuple(w / rounds for w in wins)


def selection_probabilities(
    weights: Sequence[float],
    seats: int,
    *,
    exact_entries_max: int,
    work_max: int,
    seed_text: str,
) -> Probabilities:
    """Exact when the list has at most `exact_entries_max` entries, else Monte Carlo with
    `work_max // entries` rounds (at least 100), seeded by the SHA-256 of `seed_text` (the
    posting id) so a report read twice says the same."""
    if any(w <= 0 for w in weights):
        raise ValueError("weights must be positive")
    if len(weights) <= exact_entries_max or seats >= len(weights) or seats <= 0:
        return Probabilities(inclusion_exact(weights, seats), "exact")
    rounds = max(100, work_max // len(weights))
    seed = int.from_bytes(hashlib.sha256(seed_text.encode()).digest()[:8], "big")
    return Probabilities(
        inclusion_monte_carlo(weights, seats, rounds, seed), f"monte_carlo/{rounds}"
    )


# --- the report ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PostingFact:
    posting_id: str
    facility_id: str
    facility_name: str
    dong: str
    month: str  # Seoul month of the shift's start, YYYY-MM
    capacity: int
    cancelled: bool


@dataclass(frozen=True)
class AttendanceFact:
    posting_id: str
    citizen_id: str
    attended: bool
    minutes_paid: int


@dataclass(frozen=True)
class PayoutFact:
    """The payout lines of one citizen for one posting, summed (accruals and reversals)."""

    posting_id: str
    citizen_id: str
    payable_won: int
    capped_won: int


@dataclass(frozen=True)
class ApplicationFact:
    posting_id: str
    citizen_id: str


@dataclass(frozen=True)
class DrawFact:
    posting_id: str
    seats: int
    entrants: tuple[str, ...]  # citizen ids
    winners: tuple[str, ...]  # citizen ids confirmed by the draw
    probability_min: float | None
    probability_max: float | None
    method: str


@dataclass(frozen=True)
class Facts:
    postings: Sequence[PostingFact]
    attendance: Sequence[AttendanceFact]
    payouts: Sequence[PayoutFact]
    applications: Sequence[ApplicationFact]
    draws: Sequence[DrawFact]
    first_shift_posting: dict[str, str]  # citizen id -> posting of their first attended shift
    paid_won_by_month: dict[str, int]  # transfers the ledger records as paid, by close month


@dataclass
class GroupFigures:
    key: str
    label: str
    shifts_posted: int = 0
    shifts_cancelled: int = 0
    shifts_filled: int = 0
    seats_offered: int = 0
    seats_filled: int = 0
    attended: int = 0
    no_shows: int = 0
    minutes_worked: int = 0
    citizens_served: int = 0
    first_time_citizens: int = 0
    applicants: int = 0
    allowance_accrued_won: int = 0
    allowance_capped_won: int = 0
    allowance_paid_won: int | None = None
    no_show_rate: float | None = None
    first_shift_share: float | None = None
    gini_allowance: float = 0.0
    gini_allowance_paid: float = 0.0
    draws: int = 0
    draw_winners: int = 0
    draw_repeat_winner_rate: float | None = None
    draw_probability_min: float | None = None
    draw_probability_max: float | None = None
    citizen_allowance_won: dict[str, int] = field(default_factory=dict, repr=False)

    @property
    def hours_worked(self) -> float:
        return round(self.minutes_worked / 60, 1)


def group_key(p: PostingFact, by: GroupBy) -> str:
    """The key of the group `p` falls in."""
    return _key_of(by)(p)[0]


def _key_of(by: GroupBy) -> Callable[[PostingFact], tuple[str, str]]:
    if by == "facility":
        return lambda p: (p.facility_id, p.facility_name)
    if by == "dong":
        return lambda p: (p.dong, p.dong)
    return lambda p: (p.month, p.month)


def _spread(
    g: GroupFigures,
    served: set[str],
    applicants: set[str],
    allowance: dict[str, int],
    draws: Iterable[DrawFact],
) -> None:
    """The fairness figures of one group from its citizens and draws."""
    everyone = applicants | set(allowance)
    g.citizen_allowance_won = {c: allowance.get(c, 0) for c in everyone}
    g.applicants = len(applicants)
    g.first_shift_share = share(len(served & applicants), len(applicants))
    g.gini_allowance = gini(list(g.citizen_allowance_won.values()))
    g.gini_allowance_paid = gini([won for won in allowance.values() if won > 0])
    wins: dict[str, int] = defaultdict(int)
    mins: list[float] = []
    maxes: list[float] = []
    for d in draws:
        g.draws += 1
        for c in set(d.winners):
            wins[c] += 1
        if d.probability_min is not None and d.probability_max is not None:
            mins.append(d.probability_min)
            maxes.append(d.probability_max)
    g.draw_winners = len(wins)
    g.draw_repeat_winner_rate = share(sum(1 for n in wins.values() if n > 1), len(wins))
    g.draw_probability_min = min(mins) if mins else None
    g.draw_probability_max = max(maxes) if maxes else None


def outcome_groups(facts: Facts, by: GroupBy) -> tuple[list[GroupFigures], GroupFigures]:
    """The figures per group (sorted by key) and for everything together."""
    key_of = _key_of(by)
    place = {p.posting_id: p for p in facts.postings}
    groups: dict[str, GroupFigures] = {}

    def group_of(posting_id: str) -> GroupFigures | None:
        p = place.get(posting_id)
        if p is None:
            return None
        key, label = key_of(p)
        if key not in groups:
            groups[key] = GroupFigures(key, label)
        return groups[key]

    total = GroupFigures("total", "합계")
    served: dict[str, set[str]] = defaultdict(set)
    applicants: dict[str, set[str]] = defaultdict(set)
    allowance: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    draws: dict[str, list[DrawFact]] = defaultdict(list)
    recorded: dict[str, int] = defaultdict(int)

    for p in facts.postings:
        g = group_of(p.posting_id)
        assert g is not None
        for t in (g, total):
            t.shifts_posted += 1
            t.shifts_cancelled += int(p.cancelled)
            t.seats_offered += 0 if p.cancelled else p.capacity
    for a in facts.attendance:
        g = group_of(a.posting_id)
        if g is None:
            continue
        recorded[a.posting_id] += 1
        for t in (g, total):
            t.seats_filled += 1
            t.attended += int(a.attended)
            t.no_shows += int(not a.attended)
            t.minutes_worked += a.minutes_paid
            if a.attended:
                served[t.key].add(a.citizen_id)
    for p in facts.postings:
        if not p.cancelled and recorded[p.posting_id] >= p.capacity:
            g = group_of(p.posting_id)
            assert g is not None
            g.shifts_filled += 1
            total.shifts_filled += 1
    for f in facts.payouts:
        g = group_of(f.posting_id)
        if g is None:
            continue
        for t in (g, total):
            t.allowance_accrued_won += f.payable_won
            t.allowance_capped_won += f.capped_won
            allowance[t.key][f.citizen_id] += f.payable_won
    for ap in facts.applications:
        g = group_of(ap.posting_id)
        if g is not None:
            applicants[g.key].add(ap.citizen_id)
            applicants[total.key].add(ap.citizen_id)
    for d in facts.draws:
        g = group_of(d.posting_id)
        if g is not None:
            draws[g.key].append(d)
            draws[total.key].append(d)
            applicants[g.key].update(d.entrants)
            applicants[total.key].update(d.entrants)
    first_in: dict[str, int] = defaultdict(int)
    for posting_id in facts.first_shift_posting.values():
        g = group_of(posting_id)
        if g is not None:
            first_in[g.key] += 1
            first_in[total.key] += 1

    for t in [*groups.values(), total]:
        t.citizens_served = len(served[t.key])
        t.first_time_citizens = first_in[t.key]
        t.no_show_rate = share(t.no_shows, t.seats_filled)
        _spread(t, served[t.key], applicants[t.key], dict(allowance[t.key]), draws[t.key])
        if by == "month" and t is not total:
            t.allowance_paid_won = facts.paid_won_by_month.get(t.key, 0)
    total.allowance_paid_won = sum(facts.paid_won_by_month.values())
    return [groups[k] for k in sorted(groups)], total
