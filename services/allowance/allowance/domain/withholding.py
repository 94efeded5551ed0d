"""Tax withheld from a payout (원천징수), as a versioned policy table: integer won only.

Which kind applies to the citizen allowance is the district tax office's decision, not
ours, so the kind is data (`effective_from` → kind and rates) and the default is `none`:
- `none`: nothing is withheld.
- `business_income_3_3` (사업소득): income tax 3 % of the gross, local income tax 10 % of
  that income tax (소득세법 §129 ①3, 지방세법 §103-13).
- `other_income_8_8` (기타소득): 60 % of the gross is deemed expenses (소득세법 시행령 §87),
  income tax 20 % of the rest (§129 ①6), local income tax 10 % of the income tax; nothing
  is withheld when the taxable amount of a payment is 50,000 won or less (과세최저한, §84).

Every tax is truncated below 10 won (10원 미만 절사, 국고금관리법 §47) and the local tax is
computed from the income tax after truncation, as a withholding receipt shows it. Deemed
expenses are rounded down, so the taxable amount is never understated. Optionally an
income tax under `income_tax_exempt_below_won` is not withheld at all (소액부징수, §86:
1,000 won); it is off (0) until the tax office confirms it applies to this payment.

Rates are integer basis points (1 % = 100 bp), so no float ever touches money.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any

from allowance.domain.policy import Violation

BASIS_POINTS_PER_WHOLE = 10_000
TAX_TRUNCATION_WON = 10
# A bound against typos and overflowing downstream columns: one monthly payout of the
# allowance is a few hundred thousand won.
GROSS_WON_MAX = 1_000_000_000_000
ENTRIES_MAX = 100


class WithholdingKind(StrEnum):
    NONE = "none"
    BUSINESS_INCOME_3_3 = "business_income_3_3"
    OTHER_INCOME_8_8 = "other_income_8_8"


@dataclass(frozen=True)
class WithholdingEntry:
    """From `effective_from` (a Seoul payment date) until the next entry, payments withhold so.

    `local_tax_rate_bp` is a share of the income tax, not of the gross. Fields a kind does
    not use must be 0, so a table never looks as if it withholds what it does not.
    """

    effective_from: date
    kind: WithholdingKind
    source: str
    income_tax_rate_bp: int = 0
    local_tax_rate_bp: int = 0
    deemed_expense_rate_bp: int = 0
    taxable_exempt_max_won: int = 0
    income_tax_exempt_below_won: int = 0


# Which rate fields each kind reads; the others must be 0.
_FIELDS_USED: Mapping[WithholdingKind, frozenset[str]] = {
    WithholdingKind.NONE: frozenset(),
    WithholdingKind.BUSINESS_INCOME_3_3: frozenset(
        {"income_tax_rate_bp", "local_tax_rate_bp", "income_tax_exempt_below_won"}
    ),
    WithholdingKind.OTHER_INCOME_8_8: frozenset(
        {
            "income_tax_rate_bp",
            "local_tax_rate_bp",
            "deemed_expense_rate_bp",
            "taxable_exempt_max_won",
            "income_tax_exempt_below_won",
        }
    ),
}
_RATE_FIELDS = ("income_tax_rate_bp", "local_tax_rate_bp", "deemed_expense_rate_bp")
_WON_FIELDS = ("taxable_exempt_max_won", "income_tax_exempt_below_won")


def statutory_entry(effective_from: date, kind: WithholdingKind) -> WithholdingEntry:
    """An entry with the rates the law sets today for `kind` (see the module docstring)."""
    if kind is WithholdingKind.BUSINESS_INCOME_3_3:
        return WithholdingEntry(
            effective_from,
            kind,
            "business income 3 % + local 10 % of it (소득세법 §129 ①3, 지방세법 §103-13)",
            income_tax_rate_bp=300,
            local_tax_rate_bp=1_000,
        )
    if kind is WithholdingKind.OTHER_INCOME_8_8:
        return WithholdingEntry(
            effective_from,
            kind,
            "other income: 60 % deemed expenses (소득세법 시행령 §87), 20 % of the rest"
            " (§129 ①6), local 10 % of it, nothing at 50,000 won taxable or less (§84)",
            income_tax_rate_bp=2_000,
            local_tax_rate_bp=1_000,
            deemed_expense_rate_bp=6_000,
            taxable_exempt_max_won=50_000,
        )
    return WithholdingEntry(
        effective_from,
        WithholdingKind.NONE,
        "nothing withheld until the district tax office says which kind applies",
    )


@dataclass(frozen=True)
class WithholdingTable:
    entries: tuple[WithholdingEntry, ...]
    version: int = 0

    def __post_init__(self) -> None:
        ordered = tuple(sorted(self.entries, key=lambda e: e.effective_from))
        object.__setattr__(self, "entries", ordered)

    def entry_on(self, day: date) -> WithholdingEntry | None:
        """The entry in effect on `day`: the latest one that started on or before it."""
        found: WithholdingEntry | None = None
        for entry in self.entries:
            if entry.effective_from > day:
                break
            found = entry
        return found


SEED_WITHHOLDING = WithholdingTable((statutory_entry(date(2020, 1, 1), WithholdingKind.NONE),))


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def validate_withholding_table(entries: Sequence[WithholdingEntry]) -> list[Violation]:
    """Why this table cannot be adopted; empty when it can.

    Entries must be given in increasing `effective_from` (the order an auditor reads them
    in), each with a known kind, a source, rates that are integers within 0–100 % and won
    bounds that are integers ≥ 0, and zero in every field its kind does not use.
    """
    if not entries:
        return [Violation("withholding", "the table needs at least one entry", "empty")]
    if len(entries) > ENTRIES_MAX:
        return [Violation("withholding", f"at most {ENTRIES_MAX} entries", "out_of_range")]
    violations: list[Violation] = []
    previous: date | None = None
    for i, entry in enumerate(entries):
        prefix = f"withholding.{i}"
        if not isinstance(entry.effective_from, date):
            violations.append(Violation(f"{prefix}.effective_from", "not a date", "invalid"))
        elif previous is not None and entry.effective_from <= previous:
            violations.append(
                Violation(
                    f"{prefix}.effective_from",
                    f"{entry.effective_from.isoformat()} does not come after the entry before"
                    f" it ({previous.isoformat()}): list entries in increasing date order",
                    "not_ordered",
                )
            )
        if isinstance(entry.effective_from, date):
            previous = entry.effective_from
        try:
            kind = WithholdingKind(entry.kind)
        except ValueError:
            known = ", ".join(k.value for k in WithholdingKind)
            violations.append(
                Violation(f"{prefix}.kind", f"{entry.kind!r} is not one of {known}", "unknown")
            )
            continue
        if not str(entry.source).strip():
            violations.append(
                Violation(f"{prefix}.source", "say where the rates come from", "missing")
            )
        for name in (*_RATE_FIELDS, *_WON_FIELDS):
            violation = _field_violation(prefix, name, getattr(entry, name), kind)
            if violation is not None:
                violations.append(violation)
    return violations


def _field_violation(
    prefix: str, name: str, value: object, kind: WithholdingKind
) -> Violation | None:
    field = f"{prefix}.{name}"
    if not _is_int(value):
        return Violation(field, "an integer", "not_integer")
    assert isinstance(value, int)
    if name in _RATE_FIELDS and not 0 <= value <= BASIS_POINTS_PER_WHOLE:
        return Violation(field, "a rate is 0 to 10000 basis points (0–100 %)", "out_of_range")
    if name in _WON_FIELDS and not 0 <= value <= GROSS_WON_MAX:
        return Violation(field, f"0 to {GROSS_WON_MAX:,} won", "out_of_range")
    if value != 0 and name not in _FIELDS_USED[kind]:
        return Violation(field, f"kind {kind.value} does not use it: set it to 0", "not_used")
    return None


@dataclass(frozen=True)
class Withholding:
    """What one payment withholds: `net_won` is what reaches the citizen's account."""

    gross_won: int
    income_tax_won: int
    local_tax_won: int
    net_won: int
    kind: WithholdingKind = WithholdingKind.NONE
    taxable_won: int = 0

    def __post_init__(self) -> None:
        if self.net_won + self.income_tax_won + self.local_tax_won != self.gross_won:
            raise ValueError("net plus taxes must equal the gross")
        if min(self.income_tax_won, self.local_tax_won, self.net_won) < 0:
            raise ValueError("taxes and net are never negative")


class NoWithholdingPolicy(LookupError):
    """A payment dated before the table's first entry: nobody has said what to withhold."""


def truncate_won(amount_won: int) -> int:
    """`amount_won` with the won below 10 cut off (10원 미만 절사): 999 → 990."""
    return amount_won // TAX_TRUNCATION_WON * TAX_TRUNCATION_WON


def share_won(amount_won: int, rate_bp: int) -> int:
    """`floor(amount_won × rate_bp / 10000)` in exact integer arithmetic."""
    return amount_won * rate_bp // BASIS_POINTS_PER_WHOLE


def withholding_for(table: WithholdingTable, paid_on: date, gross_won: int) -> Withholding:
    """The taxes withheld from a payment of `gross_won` made on `paid_on` (a Seoul date)."""
    if not _is_int(gross_won):
        raise TypeError("gross_won must be an integer")
    if not 0 <= gross_won <= GROSS_WON_MAX:
        raise ValueError(f"gross_won must be between 0 and {GROSS_WON_MAX:,}, not {gross_won}")
    entry = table.entry_on(paid_on)
    if entry is None:
        raise NoWithholdingPolicy(f"no withholding entry is in effect on {paid_on.isoformat()}")
    kind = WithholdingKind(entry.kind)
    if kind is WithholdingKind.NONE:
        return Withholding(gross_won, 0, 0, gross_won, kind, gross_won)
    if kind is WithholdingKind.OTHER_INCOME_8_8:
        taxable_won = gross_won - share_won(gross_won, entry.deemed_expense_rate_bp)
        if taxable_won <= entry.taxable_exempt_max_won:
            return Withholding(gross_won, 0, 0, gross_won, kind, taxable_won)
    else:
        taxable_won = gross_won
    income_tax_won = truncate_won(share_won(taxable_won, entry.income_tax_rate_bp))
    if income_tax_won < entry.income_tax_exempt_below_won:
        income_tax_won = 0
    local_tax_won = truncate_won(share_won(income_tax_won, entry.local_tax_rate_bp))
    net_won = gross_won - income_tax_won - local_tax_won
    return Withholding(gross_won, income_tax_won, local_tax_won, net_won, kind, taxable_won)


# --- (de)serialisation of stored versions ------------------------------------------------


def withholding_to_json(entries: Sequence[WithholdingEntry]) -> list[dict[str, Any]]:
    return [
        {
            "effective_from": e.effective_from.isoformat(),
            "kind": e.kind.value,
            "income_tax_rate_bp": e.income_tax_rate_bp,
            "local_tax_rate_bp": e.local_tax_rate_bp,
            "deemed_expense_rate_bp": e.deemed_expense_rate_bp,
            "taxable_exempt_max_won": e.taxable_exempt_max_won,
            "income_tax_exempt_below_won": e.income_tax_exempt_below_won,
            "source": e.source,
        }
        for e in entries
    ]


def withholding_from_json(rows: Sequence[Mapping[str, Any]], version: int = 0) -> WithholdingTable:
    """A stored (already validated) version back as a table."""
    return WithholdingTable(
        tuple(
            WithholdingEntry(
                date.fromisoformat(str(r["effective_from"])),
                WithholdingKind(str(r["kind"])),
                str(r["source"]),
                int(r.get("income_tax_rate_bp", 0)),
                int(r.get("local_tax_rate_bp", 0)),
                int(r.get("deemed_expense_rate_bp", 0)),
                int(r.get("taxable_exempt_max_won", 0)),
                int(r.get("income_tax_exempt_below_won", 0)),
            )
            for r in rows
        ),
        version,
    )
