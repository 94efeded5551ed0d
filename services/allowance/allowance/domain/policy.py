"""Rate policy, statutory minimum wages and caps: values with their sources (BRIEF §5).

Each table is replaced as a whole by an administrator and every version is kept, so an
auditor can see which table was in force when a reservation locked its rate. Money already
reserved or accrued never changes when a table changes: a reservation keeps the rate it
locked at submission (see `money` and docs/decisions/0005-ledger-accounts.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from shared.money import RateEntry as RateEntry  # re-exported: the table's rows
from shared.money import rate_in_force

WON_PER_HOUR_MAX = 1_000_000  # a bound against typos (a rate is a few ten thousand won)


@dataclass(frozen=True)
class Violation:
    """One reason a policy table is refused, for a problem+json `errors` item."""

    field: str
    message: str
    code: str

    def as_error(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message, "code": self.code}


def won(amount: int) -> str:
    """`10030` as `10,030` for messages people read."""
    return f"{amount:,}"


# --- hourly rates ----------------------------------------------------------------------


@dataclass(frozen=True)
class RateTable:
    entries: tuple[RateEntry, ...]
    version: int = 0

    def __post_init__(self) -> None:
        ordered = tuple(sorted(self.entries, key=lambda e: e.effective_from))
        object.__setattr__(self, "entries", ordered)

    def rate_on(self, day: date) -> RateEntry | None:
        """The entry in effect on `day`: the latest one that started on or before it (the
        rule the registry's estimate follows too: `shared.money.rate_in_force`)."""
        return rate_in_force(self.entries, day)

    def years_covered(self, index: int, known_years: Iterable[int]) -> list[int]:
        """The years (among `known_years`) in which entry `index` is in effect on some day."""
        entry = self.entries[index]
        following = self.entries[index + 1] if index + 1 < len(self.entries) else None
        first = entry.effective_from.year
        out: list[int] = []
        for year in sorted(set(known_years)):
            if year < first:
                continue
            if following is not None and date(year, 1, 1) >= following.effective_from:
                continue
            out.append(year)
        return out


# --- statutory minimum wages -------------------------------------------------------------


@dataclass(frozen=True)
class MinimumWage:
    year: int
    hourly_won: int
    source: str


@dataclass(frozen=True)
class MinimumWageTable:
    entries: tuple[MinimumWage, ...]
    version: int = 0

    def for_year(self, year: int) -> MinimumWage | None:
        for entry in self.entries:
            if entry.year == year:
                return entry
        return None

    @property
    def years(self) -> list[int]:
        return sorted(e.year for e in self.entries)


def rate_violation(
    rate: int, effective_from: date, minimum: MinimumWage, field: str
) -> Violation | None:
    """The refusal of a rate below the minimum wage of a year it applies in, if it is."""
    if rate >= minimum.hourly_won:
        return None
    return Violation(
        field,
        f"{won(rate)} won/h (effective {effective_from.isoformat()}) is below the statutory"
        f" minimum wage of {minimum.year}: {won(minimum.hourly_won)} won/h",
        "below_minimum_wage",
    )


def validate_rate_table(
    entries: Sequence[RateEntry], minimum_wages: MinimumWageTable
) -> list[Violation]:
    """Why this rate table cannot be adopted; empty when it can.

    A rate must be at least the statutory minimum wage of every year it is in effect in
    (an entry runs until the next one, the last one indefinitely). An entry that starts in
    a year with no known minimum wage is refused: nobody can show it is lawful until the
    minimum wage of that year is entered (`PUT /v1/admin/minimum-wages`).
    """
    violations: list[Violation] = []
    if not entries:
        return [Violation("rates", "the rate table needs at least one entry", "empty")]
    seen: set[date] = set()
    for i, entry in enumerate(entries):
        field = f"rates.{i}"
        if entry.effective_from in seen:
            violations.append(
                Violation(
                    f"{field}.effective_from",
                    f"two entries start on {entry.effective_from.isoformat()}",
                    "duplicate",
                )
            )
        seen.add(entry.effective_from)
        if not 1 <= entry.hourly_rate_won <= WON_PER_HOUR_MAX:
            violations.append(
                Violation(
                    f"{field}.hourly_rate_won",
                    f"a rate is between 1 and {won(WON_PER_HOUR_MAX)} won/h",
                    "out_of_range",
                )
            )
        if not entry.source.strip():
            violations.append(
                Violation(f"{field}.source", "say where the figure comes from", "missing")
            )
    if violations:
        return violations
    table = RateTable(tuple(entries))
    index_of = {id(e): i for i, e in enumerate(entries)}
    for position, entry in enumerate(table.entries):
        field = f"rates.{index_of[id(entry)]}.hourly_rate_won"
        start_year = entry.effective_from.year
        if minimum_wages.for_year(start_year) is None:
            violations.append(
                Violation(
                    field,
                    f"no statutory minimum wage is known for {start_year}, so"
                    f" {won(entry.hourly_rate_won)} won/h cannot be shown to be lawful;"
                    " enter that year's minimum wage first (PUT /v1/admin/minimum-wages)",
                    "no_minimum_wage_for_year",
                )
            )
        for year in table.years_covered(position, minimum_wages.years):
            minimum = minimum_wages.for_year(year)
            assert minimum is not None
            violation = rate_violation(entry.hourly_rate_won, entry.effective_from, minimum, field)
            if violation is not None:
                violations.append(violation)
    return violations


def validate_minimum_wages(entries: Sequence[MinimumWage]) -> list[Violation]:
    violations: list[Violation] = []
    if not entries:
        return [Violation("minimum_wages", "the table needs at least one year", "empty")]
    years: set[int] = set()
    for i, entry in enumerate(entries):
        if entry.year in years:
            violations.append(Violation(f"minimum_wages.{i}.year", "year repeated", "duplicate"))
        years.add(entry.year)
        if not 1 <= entry.hourly_won <= WON_PER_HOUR_MAX:
            violations.append(
                Violation(f"minimum_wages.{i}.hourly_won", "out of range", "out_of_range")
            )
        if not entry.source.strip():
            violations.append(
                Violation(f"minimum_wages.{i}.source", "say where it comes from", "missing")
            )
    return violations


# --- caps --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CapEntry:
    """Per citizen: booked hours per ISO week, allowance won per Seoul month."""

    year: int
    weekly_hours_max: int
    monthly_amount_max_won: int
    source: str


@dataclass(frozen=True)
class CapTable:
    entries: tuple[CapEntry, ...]
    version: int = 0

    def __post_init__(self) -> None:
        if not self.entries:
            raise ValueError("a cap table needs at least one year")
        object.__setattr__(self, "entries", tuple(sorted(self.entries, key=lambda e: e.year)))

    def caps_for(self, year: int) -> CapEntry:
        """The caps of `year`: its own row, else the latest earlier row carried forward,
        else (a year before the table) the earliest row."""
        found = self.entries[0]
        for entry in self.entries:
            if entry.year <= year:
                found = entry
        return found


def validate_cap_table(entries: Sequence[CapEntry]) -> list[Violation]:
    violations: list[Violation] = []
    if not entries:
        return [Violation("caps", "the cap table needs at least one year", "empty")]
    years: set[int] = set()
    for i, entry in enumerate(entries):
        if entry.year in years:
            violations.append(Violation(f"caps.{i}.year", "year repeated", "duplicate"))
        years.add(entry.year)
        if not 1 <= entry.weekly_hours_max <= 7 * 24:
            violations.append(
                Violation(f"caps.{i}.weekly_hours_max", "between 1 and 168 hours", "out_of_range")
            )
        if entry.monthly_amount_max_won < 0:
            violations.append(
                Violation(f"caps.{i}.monthly_amount_max_won", "not negative", "out_of_range")
            )
        if not entry.source.strip():
            violations.append(Violation(f"caps.{i}.source", "say where it comes from", "missing"))
    return violations


# --- the known figures (BRIEF §5) --------------------------------------------------------

_BRIEF = "BRIEF §5"

SEED_RATES: tuple[RateEntry, ...] = (
    RateEntry(date(2020, 1, 1), 10_353, f"Gwangsan-gu living wage 2020 (광산구 생활임금) {_BRIEF}"),
    RateEntry(date(2021, 1, 1), 10_520, f"Gwangsan-gu living wage 2021 (광산구 생활임금) {_BRIEF}"),
    RateEntry(
        date(2022, 1, 1),
        10_920,
        f"Gwangsan-gu living wage 2022 (광산구 생활임금), {_BRIEF}; no 2023 or 2024 figure is"
        " in the brief, so this rate stays in effect until 2025-01-01",
    ),
    RateEntry(
        date(2025, 1, 1), 12_930, f"Gwangju city living wage 2025 (광주광역시 생활임금), {_BRIEF}"
    ),
    RateEntry(
        date(2026, 1, 1), 13_303, f"Gwangju city living wage 2026 (광주광역시 생활임금), {_BRIEF}"
    ),
)

_NOTICE = (
    "statutory minimum wage {year} (Minimum Wage Commission decision, Ministry of Employment"
    " and Labor notice); not in BRIEF §5, entered from the public notice"
)

SEED_MINIMUM_WAGES: tuple[MinimumWage, ...] = (
    MinimumWage(2020, 8_590, _NOTICE.format(year=2020)),
    MinimumWage(2021, 8_720, _NOTICE.format(year=2021)),
    MinimumWage(2022, 9_160, _NOTICE.format(year=2022)),
    MinimumWage(2023, 9_620, _NOTICE.format(year=2023)),
    MinimumWage(2024, 9_860, f"statutory minimum wage 2024, {_BRIEF}"),
    MinimumWage(2025, 10_030, f"statutory minimum wage 2025, {_BRIEF}"),
    MinimumWage(2026, 10_320, f"statutory minimum wage 2026, {_BRIEF}"),
)

WEEKLY_HOURS_MAX_2022 = 13
MONTHLY_AMOUNT_MAX_WON_2022 = 583_444

SEED_CAPS: tuple[CapEntry, ...] = tuple(
    CapEntry(
        year,
        WEEKLY_HOURS_MAX_2022,
        MONTHLY_AMOUNT_MAX_WON_2022,
        f"Danggeun Gwangsan 2022: 13 h per ISO week, 583,444 won per month, {_BRIEF}"
        if year == 2022
        else "assumed: the 2022 figures (13 h/week, 583,444 won/month, BRIEF §5) carried"
        " over until the district publishes this year's",
    )
    for year in range(2020, 2027)
)


# --- (de)serialisation of stored versions ------------------------------------------------


def rates_to_json(entries: Iterable[RateEntry]) -> list[dict[str, Any]]:
    return [
        {
            "effective_from": e.effective_from.isoformat(),
            "hourly_rate_won": e.hourly_rate_won,
            "source": e.source,
        }
        for e in entries
    ]


def rates_from_json(rows: Sequence[Mapping[str, Any]], version: int = 0) -> RateTable:
    return RateTable(
        tuple(
            RateEntry(
                date.fromisoformat(str(r["effective_from"])),
                int(r["hourly_rate_won"]),
                str(r["source"]),
            )
            for r in rows
        ),
        version,
    )


def minimum_wages_to_json(entries: Iterable[MinimumWage]) -> list[dict[str, Any]]:
    return [{"year": e.year, "hourly_won": e.hourly_won, "source": e.source} for e in entries]


def minimum_wages_from_json(
    rows: Sequence[Mapping[str, Any]], version: int = 0
) -> MinimumWageTable:
    return MinimumWageTable(
        tuple(MinimumWage(int(r["year"]), int(r["hourly_won"]), str(r["source"])) for r in rows),
        version,
    )


def caps_to_json(entries: Iterable[CapEntry]) -> list[dict[str, Any]]:
    return [
        {
            "year": e.year,
            "weekly_hours_max": e.weekly_hours_max,
            "monthly_amount_max_won": e.monthly_amount_max_won,
            "source": e.source,
        }
        for e in entries
    ]


def caps_from_json(rows: Sequence[Mapping[str, Any]], version: int = 0) -> CapTable:
    return CapTable(
        tuple(
            CapEntry(
                int(r["year"]),
                int(r["weekly_hours_max"]),
                int(r["monthly_amount_max_won"]),
                str(r["source"]),
            )
            for r in rows
        ),
        version,
    )
