"""`python -m tools.demo run|check [--seed N] [--size full|small] [--months N]`.

`run` (`make run`): start the stack if it is not running (APP_ENV=demo) and the partner
simulator, play the month, print the summary and the URLs, serve until Ctrl-C, then stop
only what it started. `check` (`make demo`): play the month on the running stack (starting
it if needed), print the summary, check the scenario's expectations, the invariants and the
summary against the ledger export; exit 0 only if all hold.

`--months N` (N > 1, `make demo-year`: 12) plays a pilot year instead (tools/demo/year.py):
N months with the fair draw, the same scenario again first come only, then both outcome
reports side by side; it prints and exits in either mode.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tools import invariants
from tools.api_client import Api, ApiError, Endpoints, http_client
from tools.demo.play import (
    CONCURRENCY_MAX,
    TRANSFER_FAILED_REASON,
    DemoError,
    Outcome,
    Player,
    withheld,
)
from tools.demo.scenario import SEED_DEFAULT, SIZES, make_plan
from tools.demo.services import ensure_stack, read_stack_env, simulator

ROOT = Path(__file__).resolve().parents[2]
SIM_START_S_MAX = 20.0


def say(line: str) -> None:
    print(f"  · {line}", flush=True)


# --- the summary --------------------------------------------------------------------------


@dataclass
class Summary:
    lines: list[str]
    figures: dict[str, int]


def won(n: int) -> str:
    return f"{n:,} won"


def next_period(period: str) -> str:
    year, month = (int(x) for x in period.split("-"))
    return f"{year + month // 12}-{month % 12 + 1:02d}"


async def summarise(api: Api, out: Outcome) -> Summary:
    plan = out.plan
    ours = set(out.citizen_ids.values())
    statements, status = await api.finance.all_statements(plan.period)
    mine = [s for s in statements if s["citizen_id"] in ours]
    payout = await api.finance.get_payout_file(plan.period, "json")
    assert isinstance(payout, dict)
    budget = await api.finance.get_budget(fiscal_year=plan.fiscal_year)
    report = await api.finance.get_withholding_report(plan.period, "json")
    assert isinstance(report, dict)
    taxed_ours = [x for x in report["lines"] if x["citizen_id"] in ours]
    lines_ours = [line for line in payout["lines"] if line["citizen_id"] in ours]
    held_ours = [h for h in payout["held_back"] if h["citizen_id"] in ours]
    ids = set(out.posting_ids.values())
    sim = await api.simulator.notifications()
    notes = [n for n in sim["items"] if n["data"].get("posting_id") in ids]
    note_types = Counter(n["type"] for n in notes)

    statuses = Counter(a["status"] for a in out.applications.values())
    reasons = Counter(a["reason"] for a in out.applications.values() if a["status"] == "rejected")
    played = [p for p in plan.postings if out.posting_status.get(p.key) == "open"]
    seats = sum(p.capacity for p in played)
    attended = [a for a in out.attendance if a["status"] == "attended"]
    f: dict[str, int] = {
        "facilities": len(out.facility_ids),
        "postings_submitted": len(plan.postings),
        "postings_published": sum(
            1 for s in out.posting_status.values() if s in ("open", "cancelled")
        ),
        "postings_rejected_budget": sum(1 for s in out.posting_status.values() if s == "rejected"),
        "postings_cancelled": sum(1 for s in out.posting_status.values() if s == "cancelled"),
        "seats_offered": seats,
        "seats_filled": out.seats_filled_at_start,
        "fill_rate_pct": round(100 * out.seats_filled_at_start / seats) if seats else 0,
        "citizens": len(plan.citizens),
        "applications": len(out.application_ids),
        "withdrawn": out.withdrawn,
        "attended": len(attended),
        "no_shows": len(out.attendance) - len(attended),
        "hours_worked": sum(a["minutes"] for a in out.attendance) // 60,
        "citizens_paid": sum(1 for s in mine if int(s["payable_won"]) > 0),
        "won_paid": sum(int(s["payable_won"]) for s in mine),
        "won_capped": sum(int(s["capped_won"]) for s in mine),
        "citizens_capped": sum(1 for s in mine if int(s["capped_won"]) > 0),
        "payout_lines": len(lines_ours),
        "payout_won": sum(int(line["amount_won"]) for line in lines_ours),
        "held_back": len(held_ours),
        "held_back_won": sum(int(h["carried_forward_won"]) for h in held_ours),
        "withheld_gross_won": sum(int(x["gross_won"]) for x in taxed_ours),
        "income_tax_won": sum(int(x["income_tax_won"]) for x in taxed_ours),
        "local_tax_won": sum(int(x["local_tax_won"]) for x in taxed_ours),
        "net_won": sum(int(x["net_won"]) for x in taxed_ours),
        "budget_total_won": int(budget["total_won"]),
        "budget_available_won": int(budget["available_won"]),
        "budget_reserved_won": int(budget["reserved_won"]),
        "notifications_received": len(notes),
        "notifications_bad_signatures": int(sim["bad_signatures"]),
        # The demo's postings do not ask for reconfirmation (opt-in): reminders only.
        "reminders_sent": note_types["booking.reminder"],
        "reconfirmations_requested": note_types["booking.reconfirm_requested"],
        "released_not_reconfirmed": sum(
            1
            for n in notes
            if n["type"] == "booking.cancelled" and n["data"].get("reason") == "not_reconfirmed"
        ),
    }
    f.update({k: v for k, v in out.figures.items() if isinstance(v, int)})
    allowance = api.endpoints.allowance_url
    text = [
        f"Danggeun Gwangsan — {plan.period} (seed {plan.seed}, {plan.size_name} scenario,"
        f" statements {status})",
        f"  facilities         {f['facilities']} (children's centres, small libraries, welfare"
        " and senior centres)",
        f"  postings           {f['postings_submitted']} submitted, {f['postings_published']}"
        f" published, {f['postings_rejected_budget']} rejected for budget,"
        f" {f['postings_cancelled']} cancelled by the facility",
        f"  fill rate          {f['seats_filled']} of {f['seats_offered']} seats filled"
        f" ({f['fill_rate_pct']}%)",
        f"  citizens           {f['citizens']}: {f['applications']} applications —"
        + ", ".join(
            f" {statuses[s]} {s}"
            for s in ("confirmed", "waitlisted", "rejected", "withdrawn", "cancelled")
            if statuses[s]
        ),
        "  refusals           "
        + (", ".join(f"{n} {r}" for r, n in reasons.most_common()) or "none"),
        f"  rush               {out.figures.get('rush_applicants', 0)} applicants for"
        f" {out.figures.get('rush_capacity', 0)} seats: {out.figures.get('rush_confirmed', 0)}"
        f" confirmed, {out.figures.get('rush_waitlisted', 0)} waitlisted",
        f"  draw               {out.figures.get('draw_applicants', 0)} applicants drawn for"
        f" {out.figures.get('draw_seats', 0)} seats",
        f"  attendance         {f['attended']} attended, {f['no_shows']} no-shows,"
        f" {f['hours_worked']} hours worked",
        f"  paid               {f['citizens_paid']} citizens, {won(f['won_paid'])}"
        f" ({won(f['won_capped'])} over the monthly cap for {f['citizens_capped']} citizens)",
        f"  payout file        {f['payout_lines']} transfers, {won(f['payout_won'])};"
        f" {f['held_back']} held back without bank details ({won(f['held_back_won'])} carried"
        f" forward; {f.get('held_back_on_purpose', 0)} on purpose: the scenario's citizen who"
        " gave none)",
        f"  bank details       {f.get('payees_registered', 0)} citizens registered theirs through"
        " the partner (citizen.payee_submitted → payee.accepted)",
        f"  withholding        business_income_3_3: gross {won(f['withheld_gross_won'])}, income"
        f" tax {won(f['income_tax_won'])}, local income tax {won(f['local_tax_won'])}, net"
        f" {won(f['net_won'])}",
        f"  transfers          {f.get('transfers_paid', 0)} paid, {f.get('transfers_failed', 0)}"
        f" failed ({won(f.get('transfer_failed_won', 0))}, {TRANSFER_FAILED_REASON}): carried"
        f" into {next_period(plan.period)}'s payout file (payout.failed told to the partner)",
        f"  budget {plan.fiscal_year}        {won(f['budget_total_won'])} total,"
        f" {won(f['budget_reserved_won'])} reserved, {won(f['budget_available_won'])} left",
        f"  partner            {f['notifications_received']} signed notifications received ("
        + ", ".join(f"{n} {t}" for t, n in sorted(note_types.items()))
        + f"); bad signatures {f['notifications_bad_signatures']}",
        f"  reminders          {f['reminders_sent']} sent; reconfirmation asked"
        f" {f['reconfirmations_requested']}, released {f['released_not_reconfirmed']}"
        " (opt-in per posting; off in this scenario)",
        f"  ledger             {allowance}/v1/ledger?period={plan.period}&format=xlsx"
        " (also format=csv|json)",
        "                     header: Authorization: Bearer $FINANCE_TOKEN (FINANCE_TOKEN in"
        f" {os.environ.get('RUN_DIR', '.run')}/stack.env)",
        f"  payout file        {allowance}/v1/periods/{plan.period}/payout-file (same token)",
    ]
    return Summary(text, f)


async def ledger_agrees(api: Api, out: Outcome, summary: Summary) -> list[tuple[str, bool]]:
    """The summary's won figures against the ledger export (JSON pages, summed here)."""
    plan = out.plan
    ours = set(out.citizen_ids.values())
    entries = [
        e for e in await api.finance.ledger_entries(plan.period) if e.get("citizen_id") in ours
    ]

    def credit_sum(account: str, kinds: tuple[str, ...]) -> int:
        return -sum(
            int(e["amount_won"]) for e in entries if e["account"] == account and e["kind"] in kinds
        )

    accrued = credit_sum("allowance_payable", ("payout_accrual", "payout_reversal"))
    capped = credit_sum("allowance_capped", ("payout_accrual", "payout_reversal"))
    due = credit_sum("allowance_payout_due", ("payout_due",))
    income_tax = credit_sum("income_tax_payable", ("payout_due",))
    local_tax = credit_sum("local_income_tax_payable", ("payout_due",))
    failed = credit_sum("allowance_transfer_failed", ("payout_failed",))
    f = summary.figures
    model = out.model
    assert model is not None
    model_paid = sum(model.payable(c) for c in ours)
    model_capped = sum(model.capped(c) for c in ours)
    held = set(out.figures.get("held_back_citizens", ()))
    model_taxes = [withheld(model.payable(c)) for c in ours if c not in held and model.payable(c)]
    model_income = sum(t[0] for t in model_taxes)
    model_local = sum(t[1] for t in model_taxes)
    return [
        (
            f"won paid {f['won_paid']:,} = ledger payable credits {accrued:,}",
            f["won_paid"] == accrued,
        ),
        (f"won capped {f['won_capped']:,} = ledger capped {capped:,}", f["won_capped"] == capped),
        (f"payout file {f['payout_won']:,} = ledger payout due {due:,}", f["payout_won"] == due),
        (f"won paid = independent model {model_paid:,}", f["won_paid"] == model_paid),
        (f"won capped = independent model {model_capped:,}", f["won_capped"] == model_capped),
        (
            f"payout file + withheld + held back = won paid ({f['payout_won']:,} +"
            f" {f['income_tax_won'] + f['local_tax_won']:,} + {f['held_back_won']:,})",
            f["payout_won"] + f["income_tax_won"] + f["local_tax_won"] + f["held_back_won"]
            == f["won_paid"],
        ),
        (
            f"income tax {f['income_tax_won']:,} = ledger {income_tax:,} = model {model_income:,}",
            f["income_tax_won"] == income_tax == model_income,
        ),
        (
            f"local income tax {f['local_tax_won']:,} = ledger {local_tax:,}"
            f" = model {model_local:,}",
            f["local_tax_won"] == local_tax == model_local,
        ),
        (
            f"net {f['net_won']:,} = payout file {f['payout_won']:,}",
            f["net_won"] == f["payout_won"],
        ),
        (
            f"failed transfer {f.get('transfer_failed_won', 0):,} = ledger transfer failed"
            f" {failed:,}",
            f.get("transfer_failed_won", 0) == failed,
        ),
        ("withholding applied (business_income_3_3)", f["income_tax_won"] > 0),
        (
            "no citizen held back for missing details but the one on purpose",
            f["held_back"] == f.get("held_back_on_purpose", 0),
        ),
        ("some citizens reached the monthly cap", f["citizens_capped"] > 0),
    ]


# --- the two modes ------------------------------------------------------------------------


@dataclass
class Result:
    ok: bool
    summary: Summary
    outcome: Outcome
    report: invariants.Report | None


async def play_and_check(
    env: dict[str, str],
    seed: int,
    size: str,
    sim_url: str,
    *,
    check: bool,
    out: Callable[[str], None] = say,
) -> Result:
    ends = Endpoints.from_env(env, sim_url=sim_url)
    async with http_client(timeout_s=30, connections_max=64) as http:
        api = Api(ends, http=http, concurrency_max=CONCURRENCY_MAX)
        plan = make_plan(seed, await api.clock.get(), size)
        outcome = await Player(api, plan, out).play()
        summary = await summarise(api, outcome)
        report: invariants.Report | None = None
        if check:
            for what, held in await ledger_agrees(api, outcome, summary):
                outcome.expect(what, held)
            scope = invariants.Scope.of(
                posting_ids=list(outcome.posting_ids.values()),
                citizen_ids=list(outcome.citizen_ids.values()),
            )
            report = await invariants.check(
                env["DATABASE_URL"],
                kafka_bootstrap=env.get("KAFKA_BOOTSTRAP_SERVERS"),
                scope=scope,
                settle_s=30,
            )
    ok = outcome.ok and (report is None or report.ok)
    return Result(ok, summary, outcome, report)


def print_result(result: Result, *, check: bool) -> None:
    print()
    print("\n".join(result.summary.lines))
    timings = ", ".join(f"{k} {v}s" for k, v in result.outcome.timings_s.items())
    print(f"  played in          {timings}")
    if not check:
        return
    print()
    print("scenario expectations:")
    for what, held in result.outcome.expectations:
        print(f"  [{'ok' if held else 'FAILED'}] {what}")
    if result.report is not None:
        print(result.report.render())
    print(f"\nmake demo: {'PASSED' if result.ok else 'FAILED'}")


FINANCE_STAFF = (
    ("finance_clerk", "김담당 (데모)"),
    ("finance_approver", "이결재 (데모)"),
    ("auditor", "박감사 (데모)"),
)


async def finance_staff(env: dict[str, str]) -> list[tuple[str, str, str]]:
    """One named staff member of each finance role, to try the finance console with."""
    async with Api(Endpoints.from_env(env)) as api:
        return [
            (role, name, str((await api.allowance_admin.create_staff(name, role))["token"]))
            for role, name in FINANCE_STAFF
        ]


async def play_year_and_report(env: dict[str, str], seed: int, months: int, sim_url: str) -> int:
    from tools.demo.year import play_year

    ends = Endpoints.from_env(env, sim_url=sim_url)
    async with http_client(timeout_s=60, connections_max=64) as http:
        api = Api(ends, http=http, concurrency_max=CONCURRENCY_MAX)
        result = await play_year(api, seed, months, say)
    print()
    print("\n".join(result.lines()))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.demo", description=__doc__)
    parser.add_argument("mode", choices=("run", "check"))
    parser.add_argument("--seed", type=int, default=SEED_DEFAULT)
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument(
        "--months",
        type=int,
        default=1,
        choices=range(1, 25),
        metavar="1..24",
        help="1: the demo month (default); more: a pilot year, fair draw vs first come",
    )
    args = parser.parse_args(argv)
    check = args.mode == "check"
    print(f"demo: {args.mode}, seed {args.seed} (pass --seed to change it), size {args.size}")
    started_stack = ensure_stack()
    env = read_stack_env()
    try:
        with simulator(env) as sim_url:
            if args.months > 1:
                return asyncio.run(play_year_and_report(env, args.seed, args.months, sim_url))
            result = asyncio.run(play_and_check(env, args.seed, args.size, sim_url, check=check))
            print_result(result, check=check)
            if check:
                return 0 if result.ok else 1
            print("\nservices:")
            for name in ("registry", "matcher", "allowance"):
                url = env[f"{name.upper()}_URL"]
                print(f"  {name:<10} {url}/docs")
            print(f"  partner    {sim_url}/notifications (simulator)")
            print(f"  console    {env['REGISTRY_URL']}/console (facility staff; a key from the")
            print("             admin API: POST /v1/admin/facilities)")
            print(f"  finance    {env['ALLOWANCE_URL']}/finance (finance staff; sign in with a")
            print("             token below: a clerk requests the close, an approver approves)")
            for role, name, token in asyncio.run(finance_staff(env)):
                print(f"             {role:<17} {name}  {token}")
            print("\nserving until Ctrl-C…", flush=True)
            stop = {signal.SIGINT, signal.SIGTERM}
            signal.pthread_sigmask(signal.SIG_BLOCK, stop)
            signal.sigwait(stop)
            return 0
    except (DemoError, ApiError) as exc:
        print(f"\ndemo failed: {exc}", file=sys.stderr)
        return 1
    finally:
        if started_stack:
            import devstack as stack

            print("stopping the stack this demo started…", flush=True)
            stack.down()


if __name__ == "__main__":
    raise SystemExit(main())
