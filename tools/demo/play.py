"""Play the planned month on the running stack, through the HTTP APIs and signed partner
webhooks only, and measure what happened.

The clock is the shared one (`PUT /v1/admin/clock`): the month is played by moving it
forward in two-day steps, recording each shift's attendance in the step after it ended
(well inside the 72-hour window). The money is predicted independently (`Model`: BRIEF §5's
formula, the monthly cap) and compared with the statements and the ledger export.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

from shared.seoul import SEOUL
from tools.api_client import Api, partner
from tools.demo.scenario import CitizenPlan, Plan, PostingPlan, outcome_roll

T = TypeVar("T")
CONCURRENCY_MAX = 16  # requests in flight at once
WAIT_S_MAX = 60.0  # bound of every wait for the system to catch up
CLOCK_STEP = timedelta(days=2)
ATTENDANCE_WINDOW_H = 72  # the registry's default attendance window
SETTLE_AFTER_CLOCK_S = 0.6  # clock refresh (200 ms) plus a sweeper pass
DECISIONS = ("confirmed", "waitlisted", "rejected", "withdrawn", "cancelled")


class DemoError(Exception):
    """The system did not do what the scenario needs to go on; one sentence."""


def account_digits(seed: int, citizen_key: str) -> str:
    return f"{int(outcome_roll(seed, 'account', citizen_key) * 10**8):08d}"


def profile(c: CitizenPlan) -> dict[str, Any]:
    return partner.citizen_profile(
        c.partner_user_id,
        dong=c.dong,
        neighbourhood_verified_at=c.neighbourhood_verified_at,
        birth_date=c.birth_date,
        child_safety_check=c.child_safety_check,
    )


async def eventually(check: Callable[[], Awaitable[T | None]], what: str) -> T:
    deadline = time.monotonic() + WAIT_S_MAX
    while True:
        found = await check()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise DemoError(f"gave up after {WAIT_S_MAX:.0f} s waiting for {what}")
        await asyncio.sleep(0.25)


# --- the independent money model ------------------------------------------------------------

# The withholding the demo's close applies (소득세법 §129 ①3: business income 3 % income
# tax, local income tax 10 % of it, each truncated below 10 won).
BUSINESS_INCOME: dict[str, Any] = {
    "effective_from": "2000-01-01",
    "kind": "business_income_3_3",
    "source": "demo: 소득세법 §129 ①3 (사업소득 3%, 지방소득세 10%)",
    "income_tax_rate_bp": 300,
    "local_tax_rate_bp": 1_000,
}
TRANSFER_FAILED_REASON = "계좌 해지 (demo)"


def withheld(payout_won: int) -> tuple[int, int]:
    """Income tax and local income tax on one payout, as the demo's policy has them."""
    income_tax = payout_won * 3 // 100 // 10 * 10
    return income_tax, income_tax // 10 // 10 * 10


def rate_on(rates: list[dict[str, Any]], day: date) -> int:
    applicable = [r for r in rates if date.fromisoformat(str(r["effective_from"])) <= day]
    latest = max(applicable, key=lambda r: str(r["effective_from"]))
    return int(latest["hourly_rate_won"])


def monthly_cap(caps: list[dict[str, Any]], year: int) -> int:
    earlier = [c for c in caps if int(c["year"]) <= year] or [min(caps, key=lambda c: c["year"])]
    return int(max(earlier, key=lambda c: int(c["year"]))["monthly_amount_max_won"])


def shift_pay(rate_won: int, minutes: int) -> int:
    return rate_won * minutes // 60


def plan_need_won(plan: Plan, rates: list[dict[str, Any]]) -> int:
    """What a plan's funded shifts reserve (capacity × the full-shift payout)."""
    return sum(
        p.capacity * shift_pay(rate_on(rates, p.starts_at.astimezone(SEOUL).date()), p.minutes)
        for p in plan.postings
        if p.role != "over_budget"
    )


@dataclass
class Model:
    """What each citizen should be paid this month: BRIEF §5, computed here, not read."""

    cap_won: int
    gross_by_citizen: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    minutes_by_citizen: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def add(self, citizen_id: str, rate_won: int, minutes: int) -> None:
        self.gross_by_citizen[citizen_id] += shift_pay(rate_won, minutes)
        self.minutes_by_citizen[citizen_id] += minutes

    def payable(self, citizen_id: str) -> int:
        return min(self.cap_won, self.gross_by_citizen[citizen_id])

    def capped(self, citizen_id: str) -> int:
        return self.gross_by_citizen[citizen_id] - self.payable(citizen_id)


# --- the play -------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What happened, as measured through the APIs, and what the scenario expected."""

    plan: Plan
    facility_ids: list[str] = field(default_factory=list)
    facility_keys: list[str] = field(default_factory=list)
    posting_ids: dict[str, str] = field(default_factory=dict)  # plan key -> posting id
    posting_status: dict[str, str] = field(default_factory=dict)
    rejection_reasons: dict[str, str] = field(default_factory=dict)
    application_ids: dict[tuple[str, str], str] = field(default_factory=dict)
    applications: dict[str, dict[str, Any]] = field(default_factory=dict)  # final, by app id
    citizen_ids: dict[str, str] = field(default_factory=dict)  # plan key -> ctz_...
    withdrawn: int = 0
    attendance: list[dict[str, Any]] = field(default_factory=list)
    seats_filled_at_start: int = 0
    budget_set_won: int = 0
    expectations: list[tuple[str, bool]] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    timings_s: dict[str, float] = field(default_factory=dict)
    model: Model | None = None

    def expect(self, what: str, held: bool) -> None:
        self.expectations.append((what, held))

    @property
    def ok(self) -> bool:
        return all(held for _, held in self.expectations)


class Player:
    def __init__(
        self,
        api: Api,
        plan: Plan,
        say: Callable[[str], None],
        *,
        facilities: tuple[list[str], list[str]] | None = None,
        set_budget: bool = True,
    ) -> None:
        """`facilities` (ids and keys) are reused instead of registering the plan's (the year
        demo registers them once); without `set_budget` the caller manages the budget."""
        self.api = api
        self.plan = plan
        self.say = say
        self.out = Outcome(plan)
        self.rates: list[dict[str, Any]] = []
        self.facilities = facilities
        self.set_budget = set_budget

    def key_of(self, p: PostingPlan) -> str:
        return self.out.facility_keys[p.facility]

    async def apply(self, citizen: CitizenPlan, posting_id: str, application_id: str) -> None:
        await self.api.partner.submit_application(
            posting_id=posting_id, citizen=profile(citizen), application_id=application_id
        )

    async def withdraw(self, citizen: CitizenPlan, posting_id: str, application_id: str) -> None:
        await self.api.partner.withdraw_application(
            application_id=application_id,
            posting_id=posting_id,
            partner_user_id=citizen.partner_user_id,
        )

    async def play(self) -> Outcome:
        started = time.monotonic()
        steps: list[tuple[str, Callable[[], Awaitable[None]]]] = [
            ("setup", self.setup),
            ("postings", self.submit_postings),
            ("applications", self.applications),
            ("month", self.play_month),
            ("close", self.close_month),
        ]
        for name, step in steps:
            t0 = time.monotonic()
            await step()
            self.out.timings_s[name] = round(time.monotonic() - t0, 1)
        self.out.timings_s["total"] = round(time.monotonic() - started, 1)
        return self.out

    # 1. facilities, rates, budget
    async def setup(self) -> None:
        plan = self.plan
        now = await self.api.clock.get()
        self.say(
            f"clock {now.astimezone(SEOUL):%Y-%m-%d %H:%M} KST; playing {plan.period}"
            f" (fiscal year {plan.fiscal_year}), seed {plan.seed}, size {plan.size_name}"
        )
        if self.facilities is not None:
            self.out.facility_ids, self.out.facility_keys = self.facilities
        else:
            await self.register_facilities()
        self.rates = (await self.api.allowance_admin.get_rates())["rates"]
        self.caps = (await self.api.allowance_admin.get_caps())["caps"]
        if not self.set_budget:
            return
        # The budget: exactly what the planned shifts reserve, plus a margin smaller than
        # any over-budget shift. An existing budget of the year is changed by a ledger entry
        # (a raise or a cut of the unreserved part), never overwritten.
        need = self.need_won()
        margin = 500_000
        current = await self.api.allowance_admin.get_budget(plan.fiscal_year)
        target = need + margin
        if current is not None:
            target = int(current["total_won"]) - int(current["available_won"]) + need + margin
        result = await self.api.allowance_admin.set_budget(
            plan.fiscal_year, target, f"당근광산 데모 {plan.period} (seed {plan.seed})"
        )
        self.out.budget_set_won = need + margin
        self.say(
            f"{len(plan.facilities)} facilities registered; budget {plan.fiscal_year}:"
            f" {result['total_won']:,} won total, {result['available_won']:,} won available"
            " for the month's shifts"
        )

    def need_won(self) -> int:
        return plan_need_won(self.plan, self.rates)

    async def register_facilities(self) -> None:
        plan = self.plan
        created = await asyncio.gather(
            *(
                self.api.registry_admin.create_facility(
                    {
                        "name": f.name,
                        "kind": f.kind,
                        "dong": f.dong,
                        "address": f"광주광역시 광산구 {f.dong}",
                        "contact_phone": "062-960-8114",
                        "requires_child_safety_check": f.requires_child_safety_check,
                    }
                )
                for f in plan.facilities
            )
        )
        self.out.facility_ids = [c["id"] for c in created]
        self.out.facility_keys = [c["api_key"] for c in created]

    def rate_for(self, p: PostingPlan) -> int:
        return rate_on(self.rates, p.starts_at.astimezone(SEOUL).date())

    # 2. postings: the funded ones, then the ones the budget cannot carry, then a cancellation
    def posting_body(self, p: PostingPlan) -> dict[str, Any]:
        body: dict[str, Any] = {
            "title": p.title,
            "description": f"{self.plan.facilities[p.facility].name} · 당근광산 시민참여 활동",
            "starts_at": p.starts_at.isoformat(),
            "ends_at": p.ends_at.isoformat(),
            "capacity": p.capacity,
            "selection": p.selection,
            "tags": [self.plan.facilities[p.facility].kind],
        }
        if p.applications_close_at is not None:
            body["applications_close_at"] = p.applications_close_at.isoformat()
        return body

    async def submit(self, postings: list[PostingPlan]) -> None:
        created = await asyncio.gather(
            *(
                self.api.facility(self.key_of(p)).post_posting(self.posting_body(p))
                for p in postings
            )
        )
        for p, c in zip(postings, created, strict=True):
            self.out.posting_ids[p.key] = c["id"]

    async def settled(self, postings: list[PostingPlan]) -> dict[str, dict[str, Any]]:
        async def check() -> dict[str, dict[str, Any]] | None:
            views = await asyncio.gather(
                *(
                    self.api.facility(self.key_of(p)).get_posting(self.out.posting_ids[p.key])
                    for p in postings
                )
            )
            if any(v["status"] == "pending_budget" for v in views):
                return None
            return {p.key: v for p, v in zip(postings, views, strict=True)}

        return await eventually(check, "the budget's answers to the postings")

    async def submit_postings(self) -> None:
        funded = [p for p in self.plan.postings if p.role != "over_budget"]
        await self.submit(funded)
        for key, view in (await self.settled(funded)).items():
            self.out.posting_status[key] = view["status"]
        over = self.plan.of_role("over_budget")
        await self.submit(over)
        for key, view in (await self.settled(over)).items():
            self.out.posting_status[key] = view["status"]
            rejection = view.get("rejection") or {}
            self.out.rejection_reasons[key] = str(rejection.get("reason", ""))
        opened = sum(1 for k in self.out.posting_status if self.out.posting_status[k] == "open")
        self.out.expect(
            f"all {len(funded)} funded postings opened",
            all(self.out.posting_status[p.key] == "open" for p in funded),
        )
        self.out.expect(
            f"the {len(over)} postings over the remaining budget were rejected",
            all(self.out.posting_status[p.key] == "rejected" for p in over),
        )
        self.say(
            f"{len(self.plan.postings)} postings submitted: {opened} published,"
            f" {len(over)} rejected for budget"
            f" ({', '.join(sorted(set(self.out.rejection_reasons.values())))})"
        )
        # The matcher must know every open posting before applications come (it would hold
        # them otherwise, which works too, but the demo shows the usual path).
        await eventually(self._matcher_knows_postings, "the matcher to open the postings")

    async def _matcher_knows_postings(self) -> bool | None:
        funded = [p for p in self.plan.postings if p.role != "over_budget"]
        found = await asyncio.gather(
            *(self.api.matcher_admin.get_posting(self.out.posting_ids[p.key]) for p in funded)
        )
        return True if all(f is not None for f in found) else None

    # 3. applications in waves (one application per citizen per wave, each posting's in
    # citizen order), the rush all at once, then withdrawals and a facility's cancellation
    async def applications(self) -> None:
        plan, out = self.plan, self.out
        regulars = [c for c in plan.citizens if c.kind == "regular"]
        rush = [c for c in plan.citizens if c.kind == "rush"]
        general = [c for c in plan.citizens if c.kind == "general"]

        async def send(pairs: list[tuple[CitizenPlan, str]], sequential_per_posting: bool) -> None:
            by_posting: dict[str, list[CitizenPlan]] = defaultdict(list)
            for c, key in pairs:
                by_posting[key].append(c)
                out.application_ids[(c.key, key)] = "app_" + uuid.uuid4().hex[:20]

            async def one_posting(key: str, cs: list[CitizenPlan]) -> None:
                pid = out.posting_ids[key]
                if sequential_per_posting:
                    for c in cs:
                        await self.apply(c, pid, out.application_ids[(c.key, key)])
                else:
                    await asyncio.gather(
                        *(self.apply(c, pid, out.application_ids[(c.key, key)]) for c in cs)
                    )

            await asyncio.gather(*(one_posting(k, cs) for k, cs in by_posting.items()))
            await self.decided([key for _, key in pairs])

        # The regulars first, for their series.
        await send([(c, k) for c in regulars for k in c.applies_to], True)
        # The rush: everyone at once for one shift.
        rush_key = plan.of_role("rush")[0].key
        rush_apps = await self.decided_after(send, [(c, rush_key) for c in rush], False)
        rush_plan = plan.of_role("rush")[0]
        confirmed = sum(1 for a in rush_apps if a["status"] == "confirmed")
        waitlisted = sum(1 for a in rush_apps if a["status"] == "waitlisted")
        out.figures.update(
            rush_applicants=len(rush), rush_capacity=rush_plan.capacity,
            rush_confirmed=confirmed, rush_waitlisted=waitlisted,
        )  # fmt: skip
        out.expect(
            f"the rush filled exactly its {rush_plan.capacity} seats"
            f" ({confirmed} confirmed, {waitlisted} waitlisted of {len(rush)})",
            confirmed == rush_plan.capacity and waitlisted == len(rush) - rush_plan.capacity,
        )
        waves = max((len(c.applies_to) for c in general), default=0)
        for wave in range(waves):
            await send([(c, c.applies_to[wave]) for c in general if len(c.applies_to) > wave], True)
        self.say(f"{len(out.application_ids)} applications sent as signed partner webhooks")

        # Withdrawals of confirmed bookings, well before the shifts: seats go to the waitlist.
        finals = await self.decided(list({k for _, k in out.application_ids}))
        by_key = {c.key: c for c in plan.citizens}
        withdrawing: list[tuple[CitizenPlan, str]] = []
        for ckey, pkey in plan.withdrawals:
            app_id = out.application_ids.get((ckey, pkey))
            if app_id and finals.get(app_id, {}).get("status") == "confirmed":
                withdrawing.append((by_key[ckey], pkey))
        await asyncio.gather(
            *(
                self.withdraw(c, out.posting_ids[k], out.application_ids[(c.key, k)])
                for c, k in withdrawing
            )
        )
        out.withdrawn = len(withdrawing)

        async def withdrawals_applied() -> bool | None:
            apps = await self.decided([k for _, k in withdrawing])
            done = all(
                apps[out.application_ids[(c.key, k)]]["status"] in ("withdrawn", "cancelled")
                for c, k in withdrawing
            )
            return True if done else None

        await eventually(withdrawals_applied, "the withdrawals")
        # A facility cancels one shift (rain): its bookings are cancelled, its budget released.
        cancel = plan.of_role("cancel")[0]
        await self.api.facility(self.key_of(cancel)).cancel_posting(
            out.posting_ids[cancel.key], note="비 예보로 취소"
        )
        out.posting_status[cancel.key] = "cancelled"

        async def cancelled() -> bool | None:
            apps = await self.api.matcher_admin.posting_applications(out.posting_ids[cancel.key])
            live = [a for a in apps if a["status"] in ("confirmed", "waitlisted", "pending")]
            return True if not live else None

        await eventually(cancelled, "the cancelled shift's bookings to be cancelled")
        self.say(
            f"{out.withdrawn} citizens withdrew (waitlists promoted);"
            f" {self.plan.facilities[cancel.facility].name} cancelled {cancel.title}"
        )

    async def decided_after(
        self,
        send: Callable[[list[tuple[CitizenPlan, str]], bool], Awaitable[None]],
        pairs: list[tuple[CitizenPlan, str]],
        sequential: bool,
    ) -> list[dict[str, Any]]:
        await send(pairs, sequential)
        return [self.out.applications[self.out.application_ids[(c.key, k)]] for c, k in pairs]

    async def decided(self, posting_keys: list[str]) -> dict[str, dict[str, Any]]:
        """Wait until every application we sent to these postings has its decision (a draw's
        stay pending until the draw); return the applications by id, and note citizen ids."""
        out = self.out
        keys = sorted(set(posting_keys))
        wanted = {a: k for (c, k), a in out.application_ids.items() if k in keys}
        citizen_of = {a: c for (c, k), a in out.application_ids.items() if k in keys}

        async def check() -> dict[str, dict[str, Any]] | None:
            lists = await asyncio.gather(
                *(self.api.matcher_admin.posting_applications(out.posting_ids[k]) for k in keys)
            )
            found = {a["application_id"]: a for items in lists for a in items}
            for app_id, key in wanted.items():
                a = found.get(app_id)
                if a is None:
                    return None
                if a["status"] == "pending" and self.plan.posting(key).selection != "draw":
                    return None
            return found

        found = await eventually(check, "the matcher's decisions")
        for app_id, app in found.items():
            if app_id in citizen_of:
                out.citizen_ids[citizen_of[app_id]] = app["citizen_id"]
                out.applications[app_id] = app
        return found

    # 4. the month: the clock moves in steps; attendance after each shift
    async def play_month(self) -> None:
        plan, out = self.plan, self.out
        recorded: set[str] = set()
        playable = [p for p in plan.postings if out.posting_status.get(p.key) == "open"]
        model = Model(cap_won=monthly_cap(self.caps, plan.fiscal_year))
        out.model = model
        at = plan.month_start
        last_end = max(p.ends_at for p in playable)
        while True:
            at += CLOCK_STEP
            await self.move_clock(at)
            due = [p for p in playable if p.ends_at <= at and p.key not in recorded]
            await asyncio.gather(*(self.attend(p, model) for p in due))
            recorded.update(p.key for p in due)
            if at >= last_end:
                break
        attended = sum(1 for a in out.attendance if a["status"] == "attended")
        self.say(
            f"month played: attendance recorded for {len(out.attendance)} bookings"
            f" ({attended} attended, {len(out.attendance) - attended} no-shows)"
        )

    async def move_clock(self, at: datetime) -> None:
        now = await self.api.clock.get()
        if at > now:
            await self.api.clock.set(at)
            await asyncio.sleep(SETTLE_AFTER_CLOCK_S)

    async def attend(self, p: PostingPlan, model: Model) -> None:
        out = self.out
        pid = out.posting_ids[p.key]
        apps = await self.api.matcher_admin.posting_applications(pid)
        confirmed = sorted(
            (a for a in apps if a["status"] == "confirmed"), key=lambda a: a["citizen_id"]
        )
        out.seats_filled_at_start += len(confirmed)
        if p.role == "draw":
            out.figures["draw_applicants"] = out.figures.get("draw_applicants", 0) + len(apps)
            out.figures["draw_seats"] = out.figures.get("draw_seats", 0) + p.capacity
        if not confirmed:
            return
        plan_key_of = {v: k for k, v in out.citizen_ids.items()}
        regulars = {c.key for c in self.plan.citizens if c.kind == "regular"}
        records: list[dict[str, Any]] = []
        rate = self.rate_for(p)
        # Outcomes by seat (the n-th confirmed citizen in plan order), not by who holds it:
        # who won a rush or a draw depends on arrival order and the matcher's salt, the
        # figures do not.
        confirmed.sort(key=lambda a: str(plan_key_of.get(a["citizen_id"], a["citizen_id"])))
        for seat, a in enumerate(confirmed):
            ckey = plan_key_of.get(a["citizen_id"], a["citizen_id"])
            roll = outcome_roll(self.plan.seed, p.key, str(seat))
            check_in, check_out = p.starts_at, p.ends_at
            if ckey in self.plan.flaky:
                status = "no_show"  # the year demo's unreliable few: strikes, suspension
            elif ckey in regulars or roll >= 0.25:
                status = "attended"
            elif roll < 0.07:
                status = "no_show"
            elif roll < 0.15:
                status, check_out = "attended", p.ends_at - timedelta(minutes=30)  # left early
            elif roll < 0.20:
                status, check_in = "attended", p.starts_at + timedelta(minutes=15)  # came late
            else:
                # stayed on after the end: paid minutes stop at the scheduled end
                status, check_out = "attended", p.ends_at + timedelta(minutes=20)
            record: dict[str, Any] = {"booking_id": a["booking_id"], "status": status}
            minutes = 0
            if status == "attended":
                record["checked_in_at"] = check_in.isoformat()
                record["checked_out_at"] = check_out.isoformat()
                minutes = min(
                    int((min(check_out, p.ends_at) - check_in).total_seconds() // 60), p.minutes
                )
                model.add(a["citizen_id"], rate, minutes)
            out.attendance.append(
                {
                    "posting": p.key,
                    "citizen_id": a["citizen_id"],
                    "status": status,
                    "minutes": minutes,
                }
            )
            records.append(record)
        result = await self.api.facility(self.key_of(p)).record_attendance(pid, records)
        got = {r["booking_id"]: int(r["minutes"]) for r in result["records"]}
        for record, a in zip(records, confirmed, strict=True):
            expected = 0
            if record["status"] == "attended":
                ins = datetime.fromisoformat(record["checked_in_at"])
                outs = min(datetime.fromisoformat(record["checked_out_at"]), p.ends_at)
                expected = min(int((outs - ins).total_seconds() // 60), p.minutes)
            if got.get(a["booking_id"]) != expected:
                out.expect(
                    f"the registry counted {expected} minutes for booking {a['booking_id']}", False
                )

    # 5. close the month: payees, close, payout file
    async def close_month(self) -> None:
        plan, out, api = self.plan, self.out, self.api
        model = out.model
        assert model is not None
        month_end = plan.month_start.astimezone(SEOUL)
        next_month = (month_end.replace(day=28) + timedelta(days=4)).replace(day=1)
        # After the month and every attendance window (72 h after a shift), no further: the
        # shared clock never goes back, so each play costs the stack only about a month.
        last_end = max(p.ends_at for p in plan.postings)
        window_h = ATTENDANCE_WINDOW_H
        await self.move_clock(
            max(next_month, last_end + timedelta(hours=window_h)) + timedelta(minutes=5)
        )
        ours = set(out.citizen_ids.values())

        async def accrued() -> list[dict[str, Any]] | None:
            rows, _ = await api.finance.all_statements(plan.period)
            mine = [r for r in rows if r["citizen_id"] in ours]
            minutes = sum(int(r["minutes_paid"]) for r in mine)
            return mine if minutes == sum(model.minutes_by_citizen.values()) else None

        await eventually(accrued, "the allowance to pay every attended shift")
        paid = sorted(c for c in ours if model.gross_by_citizen.get(c, 0) > 0)
        plan_key_of = {v: k for k, v in out.citizen_ids.items()}
        citizen_of = {c.key: c for c in plan.citizens}
        # Every paid citizen gives bank details in the partner's app (`citizen.payee_submitted`)
        # except one, on purpose: that citizen's money is held back and carried forward.
        paid.sort(key=lambda c: plan_key_of[c])
        without = paid[min(3, len(paid) - 1)] if paid else None
        with_payee = [c for c in paid if c != without]
        puid_of = {c: citizen_of[plan_key_of[c]].partner_user_id for c in with_payee}
        await asyncio.gather(
            *(
                api.partner.submit_payee(
                    partner_user_id=puid_of[c],
                    bank_code="011",
                    account_number=f"302{account_digits(plan.seed, plan_key_of[c])}11",
                    account_holder="홍길동",
                )
                for c in with_payee
            )
        )

        async def accepted() -> bool | None:
            got = await api.simulator.notifications(type="payee.accepted")
            seen = {n["data"]["partner_user_id"] for n in got["items"]}
            return True if set(puid_of.values()) <= seen else None

        await eventually(accepted, "the allowance to store every submitted payee")
        out.figures["payees_registered"] = len(with_payee)
        out.figures["held_back_on_purpose"] = 0 if without is None else 1
        out.figures["held_back_citizens"] = [] if without is None else [without]
        # Withholding as policy: business income 3.3 % for this close, the table in force
        # restored afterwards (it is the stack's, not the scenario's).
        before = await api.allowance_admin.get_withholding()
        await api.allowance_admin.set_withholding([BUSINESS_INCOME], "demo: 3.3% for this close")
        try:
            await api.finance.close_period(plan.period)
        finally:
            await api.allowance_admin.set_withholding(
                before["withholding"], "demo: the table before the demo's close"
            )
        self.say(f"{plan.period} closed by finance (withholding 3.3%); payout file produced")
        await self.transfer_results(sorted(with_payee), puid_of)

    async def transfer_results(self, with_payee: list[str], puid_of: dict[str, str]) -> None:
        """The bank's answer: every line paid but one (이체불능), which is carried into the
        next month's payout file; the partner hears `payout.paid` / `payout.failed`."""
        plan, out, api = self.plan, self.out, self.api
        if not with_payee:
            return
        failing = with_payee[0]
        results = [
            {"citizen_id": c, "status": "paid"}
            if c != failing
            else {"citizen_id": c, "status": "failed", "reason": TRANSFER_FAILED_REASON}
            for c in with_payee
        ]
        await api.finance.post_transfer_results(plan.period, results)

        async def told() -> dict[str, Any] | None:
            got = await api.simulator.notifications(
                type="payout.failed", partner_user_id=puid_of[failing]
            )
            mine = [n for n in got["items"] if n["data"]["month"] == plan.period]
            return mine[0]["data"] if mine else None

        failed = await eventually(told, "the partner to hear of the failed transfer")
        out.figures["transfer_failed_citizen"] = failing
        out.figures["transfers_failed"] = 1
        out.figures["transfer_failed_won"] = int(failed["amount_won"])
        out.figures["transfers_paid"] = len(results) - 1
        out.expect(
            f"the failed transfer ({int(failed['amount_won']):,} won) is carried into the"
            " next month's payout file",
            bool(failed["carried"]),
        )
