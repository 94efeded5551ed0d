"""A pilot year, played (issue 19 item 4): `python -m tools.demo run --months 12`.

The year is the one-month demo's machinery (`Player`) run month after month over one set of
facilities and one growing pool of citizens:

- 37 facilities of the four kinds across the dongs, registered once;
- citizens recruited month by month, 120 at the start and 80 more each month (1,000 in the
  twelfth month: the programme's goal); each has an eagerness that fixes how often they are
  active, how many shifts they apply for and how early their applications arrive;
- postings by season (more in the school holidays, July–August and December–January),
  about a third of the popular ones by draw, a rush and a cancelled shift each month, the
  regulars' lunch series at a senior centre;
- withdrawals, no-shows (the seat-by-seat rolls of the month, and a few unreliable citizens
  who never come: strikes, then a 30-day suspension after three), a budget appropriated at
  70 % of the year's need and one amendment (추경) when it would not carry the next month,
  every month closed with its payout file and marked transferred.

The counterfactual (`selection="first_come"`) is the same plan with every draw posting taken
first come, first served. It is played on the same stack right after, in the twelve months
that follow: the shared clock only goes forward, every run uses fresh partner ids and
facilities, and the report is read by month range, so the two runs never meet — and a
developer's running stack is not wiped to get it (see docs/fairness.md §10).
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from shared.seoul import SEOUL
from tools.api_client import Api, ApiError
from tools.demo.play import Outcome, Player, plan_need_won
from tools.demo.scenario import (
    _FACILITY_NAMES,
    _KINDS,
    _TITLES,
    DONGS,
    CitizenPlan,
    FacilityPlan,
    Plan,
    PostingPlan,
    month_to_play,
)

Selection = Literal["fair", "first_come"]
FACILITIES = 37
RECRUITED_FIRST = 120
RECRUITED_PER_MONTH = 80
HOLIDAY_MONTHS = (1, 7, 8, 12)  # school holidays: more shifts at children's centres
DRAW_CLOSE_DAY = 3  # applications close on the 3rd at noon; shifts run from the 5th
SHIFT_DAYS = (5, 25)  # last shift ends by the 25th: its attendance window ends in-month
BUDGET_SHARE_FIRST = 0.7  # the first appropriation: 70 % of the year's planned need


def add_months(start: datetime, months: int) -> datetime:
    local = start.astimezone(SEOUL)
    index = local.year * 12 + local.month - 1 + months
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=SEOUL).astimezone(UTC)


@dataclass(frozen=True)
class Person:
    key: str
    partner_user_id: str
    recruited_month: int
    eagerness: float  # 0..1: how active, how many applications, how early they arrive
    dong: str
    birth_date: date
    child_safety_check: bool
    verified_days: int
    flaky: bool


@dataclass
class YearPlan:
    seed: int
    months: int
    first_month: datetime
    facilities: list[FacilityPlan]
    people: list[Person]
    plans: list[Plan] = field(default_factory=list)

    def period(self, index: int) -> str:
        return add_months(self.first_month, index).astimezone(SEOUL).strftime("%Y-%m")


def _at(month_start: datetime, day: int, hour: int) -> datetime:
    local = month_start.astimezone(SEOUL)
    return datetime(local.year, local.month, day, hour, tzinfo=SEOUL).astimezone(UTC)


def make_year(
    seed: int,
    now: datetime,
    months: int,
    selection: Selection = "fair",
    first_month: datetime | None = None,
) -> YearPlan:
    """The year's plan: pure and deterministic in `seed` and the month it starts in (the
    first month after `now`, as the one-month demo, unless `first_month` is given).
    `selection="first_come"` gives the same plan with the draw postings taken first come;
    started a whole number of years later it falls in the same calendar months, so its
    seasons are the same too."""
    rng = random.Random(seed)
    first = first_month or month_to_play(now)
    tag = f"{first.astimezone(SEOUL):%Y%m}{int(now.timestamp()) // 60 % 10**6:06d}"
    dongs = list(DONGS)
    rng.shuffle(dongs)
    facilities = [
        FacilityPlan(
            f"{dongs[i % len(dongs)]} {rng.choice(_FACILITY_NAMES[_KINDS[i % 4]])} {i + 1}",
            _KINDS[i % 4],
            dongs[i % len(dongs)],
        )
        for i in range(FACILITIES)
    ]
    people: list[Person] = []
    for m in range(months):
        for _ in range(RECRUITED_FIRST if m == 0 else RECRUITED_PER_MONTH):
            i = len(people) + 1
            people.append(
                Person(
                    key=f"Y{i:04d}",
                    partner_user_id=f"karrot_year{seed % 100000}_{tag}_{i:04d}",
                    recruited_month=m,
                    eagerness=rng.random() ** 2,  # most are occasional, a few very keen
                    dong=rng.choice(DONGS),
                    birth_date=date(2000 - rng.randint(0, 55), rng.randint(1, 12), 15),
                    child_safety_check=rng.random() < 0.8,
                    verified_days=rng.randint(5, 200),
                    flaky=rng.random() < 0.02,
                )
            )
    year = YearPlan(seed, months, first, facilities, people)
    year.plans = [_month(year, m, selection) for m in range(months)]
    return year


def _month(year: YearPlan, m: int, selection: Selection) -> Plan:
    rng = random.Random(year.seed * 100 + m)  # the same for both selections
    start = add_months(year.first_month, m)
    month = start.astimezone(SEOUL).month
    facilities = year.facilities
    postings: list[PostingPlan] = []
    close_at = _at(start, DRAW_CLOSE_DAY, 12)

    def add(
        role: Any, facility: int, day: int, hour: int, minutes: int, capacity: int, **kw: Any
    ) -> None:
        kind = facilities[facility].kind
        title = kw.pop("title", rng.choice(_TITLES[kind]))
        postings.append(
            PostingPlan(
                f"P{len(postings) + 1:02d}",
                facility,
                title,
                role,
                _at(start, day, hour),
                minutes,
                capacity,
                **kw,
            )
        )

    senior = next(i for i, f in enumerate(facilities) if f.kind == "senior_centre")
    library = next(i for i, f in enumerate(facilities) if f.kind == "small_library")
    for day in (5, 7, 9, 12, 14, 16, 19, 21, 23):
        add("regular", senior, day, 10, 240, 2, title="경로당 점심 배식 도우미 (정기)")
    general = 22 + (8 if month in HOLIDAY_MONTHS else 0) + (4 if month in (11, 12) else 0)
    for _ in range(general):
        facility = rng.randrange(len(facilities))
        popular = rng.random() < 0.35
        draw = popular and selection == "fair"
        add(
            "draw" if popular else "general",
            facility,
            rng.randint(SHIFT_DAYS[0], SHIFT_DAYS[1]),
            rng.choice((9, 10, 13, 14, 15, 18)),
            rng.choice((60, 90, 120, 120, 180, 240)),
            rng.randint(2, 5),
            selection="draw" if draw else "first_come",
            applications_close_at=close_at if draw else None,
        )
    add("rush", library, 10, 14, 120, 6, title="그림책 축제 진행 보조")
    add(
        "cancel", rng.randrange(len(facilities)), 16, 10, 120, 3, title="마을 환경 정비 (우천 취소)"
    )

    # Who is active this month, keenest first: their applications arrive first.
    pool = [p for p in year.people if p.recruited_month <= m]
    active = [p for p in pool if rng.random() < 0.15 + 0.6 * p.eagerness]
    active.sort(key=lambda p: (-p.eagerness, p.key))
    regulars = active[:2]
    rushers = active[2:22]
    others = active[22:]
    open_keys = [p.key for p in postings if p.role in ("general", "draw", "cancel")]
    regular_keys = tuple(p.key for p in postings if p.role == "regular")
    rush_key = next(p.key for p in postings if p.role == "rush")
    citizens: list[CitizenPlan] = []

    def citizen(p: Person, kind: Any, applies: tuple[str, ...]) -> None:
        citizens.append(
            CitizenPlan(
                key=p.key,
                partner_user_id=p.partner_user_id,
                kind=kind,
                standing="eligible",
                dong=p.dong,
                neighbourhood_verified_at=start - timedelta(days=p.verified_days),
                birth_date=p.birth_date,
                child_safety_check=p.child_safety_check,
                applies_to=applies,
            )
        )

    for p in regulars:
        citizen(p, "regular", regular_keys)
    for p in rushers:
        citizen(p, "rush", (rush_key,))
    for p in others:
        count = 1 + round(3 * p.eagerness)
        citizen(p, "general", tuple(rng.sample(open_keys, count)))
    general_citizens = [c for c in citizens if c.kind == "general"]
    withdrawers = rng.sample(general_citizens, min(len(general_citizens), 3 + len(active) // 40))
    return Plan(
        seed=year.seed,
        size_name="year",
        month_start=start,
        facilities=facilities,
        postings=postings,
        citizens=citizens,
        withdrawals=[(c.key, c.applies_to[0]) for c in withdrawers],
        flaky=frozenset(p.key for p in active if p.flaky),
    )


# --- the play -------------------------------------------------------------------------------


@dataclass
class YearRun:
    """What one played year left: its months, outcomes, budget actions and the time."""

    selection: Selection
    first_period: str
    last_period: str
    outcomes: list[Outcome] = field(default_factory=list)
    budget_notes: list[str] = field(default_factory=list)
    paid_months: int = 0
    seconds: float = 0.0


class YearPlayer:
    def __init__(
        self, api: Api, year: YearPlan, selection: Selection, say: Callable[[str], None]
    ) -> None:
        self.api = api
        self.year = year
        self.selection = selection
        self.say = say

    async def play(self) -> YearRun:
        started = time.monotonic()
        year = self.year
        run = YearRun(self.selection, year.period(0), year.period(year.months - 1))
        facilities: tuple[list[str], list[str]] | None = None
        for m, plan in enumerate(year.plans):
            player = Player(
                self.api, plan, lambda line: None, facilities=facilities, set_budget=False
            )
            if facilities is None:
                await player.register_facilities()
                facilities = (player.out.facility_ids, player.out.facility_keys)
                player.facilities = facilities
            player.rates = (await self.api.allowance_admin.get_rates())["rates"]
            await self.budget(player, m, run)
            out = await player.play()
            run.outcomes.append(out)
            try:
                await self.api.finance.mark_paid(plan.period)
                run.paid_months += 1
            except ApiError as exc:  # a close awaiting approval is shown, not fatal
                run.budget_notes.append(f"{plan.period}: not marked paid ({exc.status})")
            attended = sum(1 for a in out.attendance if a["status"] == "attended")
            self.say(
                f"{self.selection:<10} {plan.period}: {len(plan.postings)} postings,"
                f" {len(out.application_ids)} applications, {attended} attended,"
                f" {len(out.attendance) - attended} no-shows ({out.timings_s['total']} s)"
            )
        run.seconds = round(time.monotonic() - started, 1)
        return run

    async def budget(self, player: Player, m: int, run: YearRun) -> None:
        """At a fiscal year's first month: appropriate 70 % of its planned need. Before any
        month the remaining budget cannot carry: one amendment for the rest of the year."""
        plan = player.plan
        fy = plan.fiscal_year
        months = [p for p in self.year.plans if p.fiscal_year == fy]
        here = next(i for i, p in enumerate(months) if p.period == plan.period)
        rest = sum(plan_need_won(p, player.rates) for p in months[here:])
        current = await self.api.allowance_admin.get_budget(fy)
        margin = 500_000
        spent = 0
        if current is not None:
            spent = int(current["total_won"]) - int(current["available_won"])
        if current is None or (here == 0 and int(current["available_won"]) < rest):
            target = spent + int(rest * BUDGET_SHARE_FIRST)
            await self.api.allowance_admin.set_budget(fy, target, f"당근광산 {fy} 본예산 (데모)")
            run.budget_notes.append(f"{plan.period}: budget {fy} appropriated, {target:,} won")
            return
        if int(current["available_won"]) < player.need_won() + margin:
            target = spent + rest + margin
            await self.api.allowance_admin.set_budget(fy, target, f"당근광산 {fy} 추경 (데모)")
            run.budget_notes.append(
                f"{plan.period}: amendment (추경), budget {fy} raised to {target:,} won"
            )


# --- both runs and the report ----------------------------------------------------------------

REPORT_FIGURES: tuple[tuple[str, str], ...] = (
    ("shifts_posted", "shifts posted"),
    ("shifts_filled", "shifts filled (every seat held)"),
    ("seats_offered", "seats offered"),
    ("seats_filled", "seats filled"),
    ("hours_worked", "hours worked"),
    ("applicants", "citizens who applied"),
    ("citizens_served", "citizens served"),
    ("first_time_citizens", "first-time citizens"),
    ("first_shift_share", "share of applicants who got a shift"),
    ("allowance_accrued_won", "allowance accrued (won)"),
    ("allowance_capped_won", "over the monthly cap (won)"),
    ("allowance_paid_won", "transferred, per the ledger (won)"),
    ("no_show_rate", "no-show rate"),
    ("gini_allowance", "Gini of allowance across citizens"),
    ("gini_allowance_paid", "  the same among paid citizens only"),
    ("draws", "draws"),
    ("draw_repeat_winner_rate", "repeat-winner rate of draws"),
    ("draw_probability_min", "lowest selection probability"),
    ("draw_probability_max", "highest selection probability"),
)


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.3f}" if value < 10 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


@dataclass
class YearResult:
    fair: YearRun
    first_come: YearRun
    reports: dict[Selection, dict[str, Any]]
    recruited: int
    facilities: int

    def lines(self) -> list[str]:
        fair, fc = self.reports["fair"], self.reports["first_come"]
        out = [
            f"A pilot year, played: {self.facilities} facilities, {self.recruited} citizens"
            f" recruited over {len(self.fair.outcomes)} months",
            f"  fair draw + weighting: {self.fair.first_period} .. {self.fair.last_period}"
            f" ({self.fair.seconds} s); first come only: {self.first_come.first_period} .."
            f" {self.first_come.last_period} ({self.first_come.seconds} s)",
            "",
            f"  {'figure':<40} {'fair draw':>16} {'first come only':>16}",
        ]
        for key, label in REPORT_FIGURES:
            out.append(f"  {label:<40} {_fmt(fair['total'][key]):>16} {_fmt(fc['total'][key]):>16}")
        for run in (self.fair, self.first_come):
            reasons = Counter(
                a["reason"]
                for o in run.outcomes
                for a in o.applications.values()
                if a["status"] == "rejected"
            )
            refused = ", ".join(f"{n} {r}" for r, n in reasons.most_common()) or "none"
            withdrawn = sum(o.withdrawn for o in run.outcomes)
            out.append(
                f"  {run.selection:<10} refusals at application: {refused}; {withdrawn} withdrawals"
            )
        out += ["", "  by month (fair draw run):"]
        for g in fair["groups"]:
            out.append(
                f"    {g['key']}  {g['shifts_posted']:>3} shifts  {g['citizens_served']:>4}"
                f" served  {g['hours_worked']:>7,.1f} h  {g['allowance_accrued_won']:>12,} won"
                f"  Gini {g['gini_allowance']:.3f}"
            )
        out += ["", "  budget:"] + [f"    {n}" for n in self.fair.budget_notes]
        return out


async def play_year(api: Api, seed: int, months: int, say: Callable[[str], None]) -> YearResult:
    """The year with the fair draw, then the same scenario first come only, then both
    outcome reports (by month over each run's months)."""
    fair_plan = make_year(seed, await api.clock.get(), months, "fair")
    fair = await YearPlayer(api, fair_plan, "fair", say).play()
    # The counterfactual starts whole years later, in the same calendar months (the
    # clock is then at most at its first month's start: the shifts start on the 5th).
    later = add_months(fair_plan.first_month, 12 * -(-months // 12))
    fc_plan = make_year(seed, await api.clock.get(), months, "first_come", later)
    first_come = await YearPlayer(api, fc_plan, "first_come", say).play()
    reports: dict[Selection, dict[str, Any]] = {}
    for run in (fair, first_come):
        report = await api.finance.outcome_report(run.first_period, run.last_period, "month")
        assert isinstance(report, dict)
        reports[run.selection] = report
    return YearResult(fair, first_come, reports, len(fair_plan.people), FACILITIES)
