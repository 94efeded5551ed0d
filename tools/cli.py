"""`gwangsan`: the operator's command line.

Every command reads addresses and tokens from the environment or `.run/stack.env` (what
`make up` writes), says what it is about to change and asks before changing anything
(`--yes` skips the question, for scripts), then says what it did.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import socket
import sys
from collections.abc import Callable, Coroutine, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import asyncpg
import httpx

from shared import dlq, topics
from shared.auth import PARTNER_KEY_PREFIX, issue_key
from shared.stackenv import client_env
from tools.api_client import Api, ApiError, Endpoints

ROOT = Path(__file__).resolve().parents[1]


def stack_env() -> dict[str, str]:
    """Addresses and secrets: `.run/stack.env` overlaid by the environment."""
    return client_env()


class CliError(Exception):
    """A problem the operator can fix; printed as one sentence."""


def need(env: dict[str, str], key: str) -> str:
    value = env.get(key)
    if not value:
        raise CliError(f"{key} is not set: run `make up` or export it")
    return value


def confirm(question: str, assume_yes: bool) -> bool:
    if assume_yes:
        return True
    if not sys.stdin.isatty():
        raise CliError(f"{question} — refusing without a terminal; pass --yes to confirm")
    answer = input(f"{question} [y/N] ").strip().lower()
    return answer in ("y", "yes")


def print_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    if not rows:
        print("(none)")
        return
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns))
    for row in rows:
        print("  ".join(str(row.get(c, "")).ljust(widths[c]) for c in columns))


def api(env: dict[str, str], *needed: str) -> Api:
    """The client of the services, once the addresses and tokens a command uses are set."""
    for key in needed:
        need(env, key)
    return Api(Endpoints.from_env(env))


# --- dead-letter queues -------------------------------------------------------------------


def _source_topic(name: str) -> str:
    name = name.removesuffix(topics.DLQ_SUFFIX)
    if name not in topics.SOURCE_TOPICS:
        raise CliError(f"unknown topic {name!r}; one of: {', '.join(topics.SOURCE_TOPICS)}")
    return name


async def _discarded(env: dict[str, str]) -> set[dlq.Position]:
    """Dead letters already discarded (none known without the admin DATABASE_URL)."""
    url = env.get("DATABASE_URL")
    if not url:
        return set()
    conn = await asyncpg.connect(url)
    try:
        return await dlq.discarded(conn)
    finally:
        await conn.close()


async def cmd_dlq_list(args: argparse.Namespace, env: dict[str, str]) -> int:
    bootstrap = need(env, "KAFKA_BOOTSTRAP_SERVERS")
    names = [_source_topic(args.topic)] if args.topic else list(topics.SOURCE_TOPICS)
    skipped = await _discarded(env)
    total = 0
    for name in names:
        letters = [
            letter
            for letter in await dlq.pending(bootstrap, name, limit=args.limit)
            if letter.position not in skipped
        ]
        total += len(letters)
        if letters or args.topic:
            print(f"{topics.dlq_of(name)}: {len(letters)} waiting")
            print_table(
                [{"id": letter.id, **vars(letter)} for letter in letters],
                ["id", "key", "service", "attempts", "error"],
            )
    if not args.topic:
        print(f"{total} dead letter(s) waiting in all DLQs")
    return 0


async def cmd_dlq_replay(args: argparse.Namespace, env: dict[str, str]) -> int:
    bootstrap = need(env, "KAFKA_BOOTSTRAP_SERVERS")
    name = _source_topic(args.topic)
    letters = await dlq.pending(bootstrap, name, limit=args.limit)
    if not letters:
        print(f"{topics.dlq_of(name)} has nothing to replay")
        return 0
    if not confirm(f"Republish {len(letters)} dead letter(s) to {name}?", args.yes):
        print("nothing changed")
        return 1
    sent = await dlq.replay(bootstrap, name, limit=args.limit, discarded=await _discarded(env))
    print(f"republished {sent} message(s) from {topics.dlq_of(name)} to {name}")
    return 0


async def cmd_dlq_discard(args: argparse.Namespace, env: dict[str, str]) -> int:
    """Record that a triaged dead letter will not be replayed: who, when and why stay in
    the service's `dead_letter_discards` table; the invariant checker counts it explained."""
    bootstrap = need(env, "KAFKA_BOOTSTRAP_SERVERS")
    url = need(env, "DATABASE_URL")
    try:
        dlq_topic, partition, offset = dlq.parse_letter_id(args.id)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    reason = args.reason.strip()
    if not reason:
        raise CliError("say why it is discarded: --reason '...'")
    source = dlq_topic.removesuffix(topics.DLQ_SUFFIX)
    letters = await dlq.pending(bootstrap, source, limit=args.limit)
    found = next((x for x in letters if x.position == (dlq_topic, partition, offset)), None)
    if found is None:
        raise CliError(f"{args.id} is not waiting in {dlq_topic} (replayed, or no such message)")
    print(f"{found.id}: key {found.key}, from {found.service}, error: {found.error[:200]}")
    if not confirm(f"Discard {found.id} for good (it will never be replayed)?", args.yes):
        print("nothing changed")
        return 1
    who = args.by or f"{getpass.getuser()}@{socket.gethostname()}"
    conn = await asyncpg.connect(url)
    try:
        recorded = await dlq.discard(conn, found, reason=reason, discarded_by=who)
    finally:
        await conn.close()
    print(f"discarded {found.id} (by {who})" if recorded else f"{found.id} was discarded before")
    return 0


# --- partner notifications ----------------------------------------------------------------


async def cmd_notifications_list(args: argparse.Namespace, env: dict[str, str]) -> int:
    async with api(env, "MATCHER_URL", "ADMIN_TOKEN") as client:
        page = await client.matcher_admin.list_notifications(args.status)
    items = page["items"]
    print(
        f"{len(items)} {args.status} notification(s)"
        + (" (first page)" if page.get("next_cursor") else "")
    )
    print_table(
        items,
        ["notification_id", "type", "booking_id", "attempts", "last_status_code", "last_error"],
    )
    return 0


async def cmd_notifications_resend(args: argparse.Namespace, env: dict[str, str]) -> int:
    async with api(env, "MATCHER_URL", "ADMIN_TOKEN") as client:
        ids: list[str] = list(args.ids)
        if args.all_failed:
            page = await client.matcher_admin.list_notifications("failed")
            ids += [item["notification_id"] for item in page["items"]]
        if not ids:
            print("nothing to resend")
            return 0
        if not confirm(f"Send {len(ids)} notification(s) to the partner again?", args.yes):
            print("nothing changed")
            return 1
        for notification_id in ids:
            await client.matcher_admin.resend_notification(notification_id)
    print(f"queued {len(ids)} notification(s) for delivery again (same webhook-id each)")
    return 0


# --- facilities ---------------------------------------------------------------------------

FACILITY_KINDS = (
    "children_centre",
    "small_library",
    "welfare_centre",
    "senior_centre",
    "park",
    "other",
)
FACILITY_COLUMNS = ["id", "name", "kind", "dong", "status", "contact_phone", "address"]
_UNITS_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration_s(text: str) -> int:
    """Seconds from `3600`, `90s`, `30m`, `1h` or `7d` (argparse type)."""
    text = text.strip().lower()
    unit = _UNITS_S.get(text[-1:]) if text else None
    number = text[:-1] if unit else text
    if not number.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r}: seconds, or a number with s, m, h or d")
    return int(number) * (unit or 1)


def _show_facility(body: dict[str, Any]) -> None:
    for key in [*FACILITY_COLUMNS, "requires_child_safety_check", "created_at", "suspended_at"]:
        print(f"  {key:<28} {body.get(key)}")


def _show_key(facility_id: str, body: dict[str, Any]) -> None:
    print(f"new key for {facility_id} (shown once; give it to the facility):")
    print(body.get("api_key", body))


async def cmd_facility_create(args: argparse.Namespace, env: dict[str, str]) -> int:
    body: dict[str, Any] = {
        "name": args.name,
        "kind": args.kind,
        "dong": args.dong,
        "requires_child_safety_check": args.child_safety_check,
    }
    if args.address is not None:
        body["address"] = args.address
    if args.phone is not None:
        body["contact_phone"] = args.phone
    if not confirm(f"Register facility {args.name!r} ({args.kind}, {args.dong})?", args.yes):
        print("nothing changed")
        return 1
    async with api(env, "REGISTRY_URL", "ADMIN_TOKEN") as client:
        created = await client.registry_admin.create_facility(body)
    print(f"registered {created['id']}:")
    _show_facility(created)
    _show_key(created["id"], created)
    return 0


async def cmd_facility_list(args: argparse.Namespace, env: dict[str, str]) -> int:
    async with api(env, "REGISTRY_URL", "ADMIN_TOKEN") as client:
        rows = await client.registry_admin.all_facilities()
    if args.status:
        rows = [r for r in rows if r.get("status") == args.status]
    print(f"{len(rows)} facilit{'y' if len(rows) == 1 else 'ies'}")
    print_table(rows, FACILITY_COLUMNS)
    return 0


async def cmd_facility_show(args: argparse.Namespace, env: dict[str, str]) -> int:
    async with api(env, "REGISTRY_URL", "ADMIN_TOKEN") as client:
        body = await client.registry_admin.get_facility(args.facility_id)
        changes = await client.registry_admin.facility_changes(args.facility_id)
    print(f"{args.facility_id}:")
    _show_facility(body)
    print(f"changes ({len(changes)}):")
    print_table(
        [{**c, "by": c.get("actor_staff_id") or c.get("actor_role")} for c in changes],
        ["at", "action", "by", "changes"],
    )
    return 0


async def cmd_facility_edit(args: argparse.Namespace, env: dict[str, str]) -> int:
    changes: dict[str, Any] = {
        key: value
        for key, value in (
            ("name", args.name),
            ("kind", args.kind),
            ("dong", args.dong),
            ("address", args.address),
            ("contact_phone", args.phone),
        )
        if value is not None
    }
    if args.clear_address:
        changes["address"] = None
    if args.clear_phone:
        changes["contact_phone"] = None
    if not changes:
        raise CliError("say what to change: --name, --kind, --dong, --address or --phone")
    async with api(env, "REGISTRY_URL", "ADMIN_TOKEN") as client:
        before = await client.registry_admin.get_facility(args.facility_id)
        for key, value in changes.items():
            print(f"  {key:<14} {before.get(key)!r} -> {value!r}")
        if not confirm(f"Change facility {args.facility_id} as shown?", args.yes):
            print("nothing changed")
            return 1
        after = await client.registry_admin.edit_facility(args.facility_id, changes)
    print(f"{args.facility_id} is now:")
    _show_facility(after)
    return 0


async def cmd_facility_suspend(args: argparse.Namespace, env: dict[str, str]) -> int:
    if not confirm(
        f"Suspend facility {args.facility_id}? Its keys stop working and its pending and open"
        " postings are cancelled (bookings cancelled, citizens told).",
        args.yes,
    ):
        print("nothing changed")
        return 1
    async with api(env, "REGISTRY_URL", "ADMIN_TOKEN") as client:
        body = await client.registry_admin.suspend_facility(args.facility_id)
    cancelled = body.get("cancelled_posting_ids") or []
    print(f"{args.facility_id} is {body['facility']['status']}; {len(cancelled)} posting(s)"
          " cancelled")  # fmt: skip
    for posting_id in cancelled:
        print(f"  {posting_id}")
    return 0


async def cmd_facility_resume(args: argparse.Namespace, env: dict[str, str]) -> int:
    if not confirm(
        f"Lift the suspension of facility {args.facility_id}? It gets a new key; its old keys"
        " stay expired and cancelled postings stay cancelled.",
        args.yes,
    ):
        print("nothing changed")
        return 1
    async with api(env, "REGISTRY_URL", "ADMIN_TOKEN") as client:
        body = await client.registry_admin.resume_facility(args.facility_id)
    print(f"{args.facility_id} is {body['facility']['status']} again")
    _show_key(args.facility_id, body)
    return 0


async def cmd_rotate_key(args: argparse.Namespace, env: dict[str, str]) -> int:
    overlap = args.overlap
    old_keys = (
        f"The old one keeps working for {overlap} s."
        if overlap
        else "The old one stops working (after the configured overlap, 0 by default)."
        if overlap is None
        else "The old one stops working at once."
    )
    if not confirm(f"Issue a new key for facility {args.facility_id}? {old_keys}", args.yes):
        print("nothing changed")
        return 1
    async with api(env, "REGISTRY_URL", "ADMIN_TOKEN") as client:
        body = await client.registry_admin.rotate_facility_key(args.facility_id, overlap)
    _show_key(args.facility_id, body)
    print(f"previous keys work until {body.get('previous_keys_valid_until')}")
    return 0


async def cmd_partner_rotate_token(args: argparse.Namespace, env: dict[str, str]) -> int:
    overlap = "the configured overlap" if args.overlap_s is None else f"{args.overlap_s} s"
    if not confirm(
        f"Issue a new partner API token? The current ones keep working for {overlap}.",
        args.yes,
    ):
        print("nothing changed")
        return 1
    async with api(env, "MATCHER_URL", "ADMIN_TOKEN") as client:
        body = await client.matcher_admin.rotate_partner_token(args.overlap_s)
    print(
        f"new API token for partner {body.get('partner_id')} (shown once; give it to the"
        f" partner); the previous ones work until {body.get('previous_valid_until')}:"
    )
    print(body.get("token", body))
    return 0


async def cmd_partner_new_token(args: argparse.Namespace, env: dict[str, str]) -> int:
    """A fresh token to configure as PARTNER_API_TOKEN (made here; nothing is called)."""
    print(issue_key(PARTNER_KEY_PREFIX).secret)
    return 0


# --- policy: rates, minimum wages, caps ----------------------------------------------------


def _won(value: Any) -> str:
    return f"{int(value):,} won" if isinstance(value, int) else str(value)


def _upsert(rows: list[dict[str, Any]], key: str, row: dict[str, Any]) -> list[dict[str, Any]]:
    """The table with `row` in place of the one with the same `key` (or added), ordered."""
    kept = [r for r in rows if r[key] != row[key]]
    return sorted([*kept, row], key=lambda r: str(r[key]))


def _show_policy(title: str, table: dict[str, Any], rows_key: str, columns: list[str]) -> None:
    print(f"{title} version {table.get('version')} (set {table.get('set_at')}"
          f" by {table.get('set_by')}; note: {table.get('note') or '-'})")  # fmt: skip
    print_table(table.get(rows_key) or [], columns)


RATE_COLUMNS = ["effective_from", "hourly_rate_won", "source"]
WAGE_COLUMNS = ["year", "hourly_won", "source"]
CAP_COLUMNS = ["year", "weekly_hours_max", "monthly_amount_max_won", "source"]


async def _current(read: Coroutine[Any, Any, dict[str, Any]], rows_key: str) -> list[Any]:
    """The rows of a policy table in force (none if no table was ever set)."""
    try:
        table = await read
    except ApiError as exc:
        if exc.status == 404:
            return []
        raise
    return list(table.get(rows_key) or [])


async def cmd_rates_show(args: argparse.Namespace, env: dict[str, str]) -> int:
    async with api(env, "ALLOWANCE_URL", "ADMIN_TOKEN") as client:
        rates = await client.allowance_admin.get_rates()
        wages = await client.allowance_admin.get_minimum_wages()
    _show_policy("hourly rates", rates, "rates", RATE_COLUMNS)
    _show_policy("minimum wages", wages, "minimum_wages", WAGE_COLUMNS)
    return 0


async def cmd_rates_set(args: argparse.Namespace, env: dict[str, str]) -> int:
    row = {
        "effective_from": args.effective_from,
        "hourly_rate_won": args.won,
        "source": args.source,
    }
    async with api(env, "ALLOWANCE_URL", "ADMIN_TOKEN") as client:
        rows = await _current(client.allowance_admin.get_rates(), "rates")
        table = _upsert(rows, "effective_from", row)
        print_table(table, RATE_COLUMNS)
        if not confirm("Replace the hourly rate table with the one above?", args.yes):
            print("nothing changed")
            return 1
        done = await client.allowance_admin.set_rates(table, args.note)
    _show_policy("hourly rates", done, "rates", RATE_COLUMNS)
    return 0


async def cmd_minimum_wage_set(args: argparse.Namespace, env: dict[str, str]) -> int:
    row = {"year": args.year, "hourly_won": args.won, "source": args.source}
    async with api(env, "ALLOWANCE_URL", "ADMIN_TOKEN") as client:
        rows = await _current(client.allowance_admin.get_minimum_wages(), "minimum_wages")
        table = _upsert(rows, "year", row)
        print_table(table, WAGE_COLUMNS)
        if not confirm("Replace the minimum wage table with the one above?", args.yes):
            print("nothing changed")
            return 1
        done = await client.allowance_admin.set_minimum_wages(table, args.note)
    _show_policy("minimum wages", done, "minimum_wages", WAGE_COLUMNS)
    for warning in done.get("rate_warnings") or []:
        print(f"warning: {warning.get('message')}")
    return 0


async def cmd_caps_show(args: argparse.Namespace, env: dict[str, str]) -> int:
    async with api(env, "ALLOWANCE_URL", "ADMIN_TOKEN") as client:
        caps = await client.allowance_admin.get_caps()
    _show_policy("caps", caps, "caps", CAP_COLUMNS)
    return 0


async def cmd_caps_set(args: argparse.Namespace, env: dict[str, str]) -> int:
    row = {
        "year": args.year,
        "weekly_hours_max": args.weekly_hours,
        "monthly_amount_max_won": args.monthly_won,
        "source": args.source,
    }
    async with api(env, "ALLOWANCE_URL", "ADMIN_TOKEN") as client:
        rows = await _current(client.allowance_admin.get_caps(), "caps")
        table = _upsert(rows, "year", row)
        print_table(table, CAP_COLUMNS)
        if not confirm("Replace the caps table with the one above?", args.yes):
            print("nothing changed")
            return 1
        done = await client.allowance_admin.set_caps(table, args.note)
    _show_policy("caps", done, "caps", CAP_COLUMNS)
    return 0


# --- budget, month close, payout file --------------------------------------------------------


async def cmd_budget(args: argparse.Namespace, env: dict[str, str]) -> int:
    params = {"fiscal_year": args.fiscal_year} if args.fiscal_year else {}
    async with api(env, "ALLOWANCE_URL", "FINANCE_TOKEN") as client:
        body = await client.finance.get_budget(**params)
    for key, value in body.items():
        print(f"{key:<16} {_won(value) if key.endswith('_won') else value}")
    return 0


async def cmd_budget_set(args: argparse.Namespace, env: dict[str, str]) -> int:
    async with api(env, "ALLOWANCE_URL", "ADMIN_TOKEN") as client:
        current = await client.allowance_admin.get_budget(args.fiscal_year)
        before = int(current["total_won"]) if current else None
        shown = _won(before) if before is not None else "none"
        if not confirm(
            f"Set the {args.fiscal_year} budget from {shown} to {_won(args.amount_won)}"
            f" ({args.note!r})?",
            args.yes,
        ):
            print("nothing changed")
            return 1
        body = await client.allowance_admin.set_budget(
            args.fiscal_year, args.amount_won, args.note, previous_amount_won=before
        )
    print(f"{args.fiscal_year} budget is now:")
    for key, value in body.items():
        if key != "history":
            print(f"  {key:<16} {_won(value) if key.endswith('_won') else value}")
    return 0


async def cmd_close_month(args: argparse.Namespace, env: dict[str, str]) -> int:
    if not confirm(
        f"Close {args.period}? Its statements freeze; later corrections go to the next month.",
        args.yes,
    ):
        print("nothing changed")
        return 1
    async with api(env, "ALLOWANCE_URL", "FINANCE_TOKEN") as client:
        body = await client.finance.close_period(args.period)
    print(f"{args.period} is closed:")
    for key, value in body.items():
        print(f"  {key:<18} {_won(value) if key.endswith('_won') else value}")
    return 0


async def cmd_mark_paid(args: argparse.Namespace, env: dict[str, str]) -> int:
    if not confirm(
        f"Record that the payout file of {args.period} was transferred (payout due -> paid)?",
        args.yes,
    ):
        print("nothing changed")
        return 1
    async with api(env, "ALLOWANCE_URL", "FINANCE_TOKEN") as client:
        body = await client.finance.mark_paid(args.period)
    print(f"{args.period} is marked paid (paid at {body.get('paid_at')})")
    return 0


async def cmd_payout_file(args: argparse.Namespace, env: dict[str, str]) -> int:
    """The bank file (CSV, full account numbers: every payee decrypted is logged) saved to
    a file, or with --summary the masked lines printed (no decryption)."""
    async with api(env, "ALLOWANCE_URL", "FINANCE_TOKEN") as client:
        body = await client.finance.get_payout_file(args.period, "json" if args.summary else "csv")
    if isinstance(body, dict):
        print(f"{args.period}: {body.get('payout_count')} payout(s),"
              f" {_won(body.get('payout_won'))}")  # fmt: skip
        print_table(
            body.get("lines") or [],
            ["citizen_id", "bank_code", "account_masked", "holder_masked", "amount_won"],
        )
        held = body.get("held_back") or []
        if held:
            print(f"held back ({len(held)}):")
            print_table(held, ["citizen_id", "carried_forward_won", "reason"])
        return 0
    return save_private(Path(args.output or f"payout-{args.period}.csv"), body, args.yes)


def save_private(target: Path, content: bytes, assume_yes: bool) -> int:
    """Write a file only its owner can read (a bank file holds full account numbers);
    an existing file is overwritten only when confirmed."""
    if target.exists() and not confirm(f"Overwrite {target}?", assume_yes):
        print("nothing written")
        return 1
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(content)
    target.chmod(0o600)
    print(f"wrote {target} ({len(content)} bytes)")
    return 0


# --- the shared clock (APP_ENV test or demo) -----------------------------------------------


async def cmd_clock_show(args: argparse.Namespace, env: dict[str, str]) -> int:
    async with api(env, "REGISTRY_URL", "ADMIN_TOKEN") as client:
        now = await client.clock.get()
    print(now.isoformat())
    return 0


async def cmd_clock_set(args: argparse.Namespace, env: dict[str, str]) -> int:
    async with api(env, "REGISTRY_URL", "ADMIN_TOKEN") as client:
        now = await client.clock.get()
        if args.advance is not None:
            target = now + timedelta(seconds=args.advance)
        else:
            try:
                target = datetime.fromisoformat(args.at)
            except ValueError:
                raise CliError(f"{args.at!r} is not an ISO 8601 instant") from None
            if target.tzinfo is None:
                raise CliError("give the instant with its offset, e.g. 2026-05-01T09:00:00+09:00")
        if not confirm(
            f"Move the shared clock of every service from {now.isoformat()} to"
            f" {target.isoformat()}?",
            args.yes,
        ):
            print("nothing changed")
            return 1
        moved = await client.clock.set(target)
    print(f"the shared clock is {moved.isoformat()}")
    return 0


# --- invariants ---------------------------------------------------------------------------


async def cmd_invariants(args: argparse.Namespace, env: dict[str, str]) -> int:
    from tools import invariants

    scope = None
    if args.posting or args.citizen or args.fiscal_year:
        scope = invariants.Scope.of(
            posting_ids=args.posting, citizen_ids=args.citizen, fiscal_year=args.fiscal_year
        )
    report = await invariants.check(
        need(env, "DATABASE_URL"),
        kafka_bootstrap=env.get("KAFKA_BOOTSTRAP_SERVERS"),
        scope=scope,
        settle_s=args.settle,
    )
    print(report.render())
    return 0 if report.ok else 1


# --- tamper evidence ----------------------------------------------------------------------


ChainName = Literal["ledger", "payee_access"]
CHAIN_TITLES: dict[str, str] = {"ledger": "ledger transactions", "payee_access": "payee access log"}


async def verify_chain(conn: asyncpg.Connection, name: ChainName) -> Any:
    """Recompute one hash chain of the allowance (allowance/domain/chain.py) on `conn`
    (search path: the allowance schema), in the caller's snapshot; the `chain.Verdict`."""
    from allowance.domain import chain
    from allowance.store import Store

    db = Store(conn)
    head = await db.chain_head(name)
    checker = chain.Verifier()
    async for row in db.ledger_links() if name == "ledger" else db.access_links():
        found = checker.step(row)
        if found is not None:
            return found
    return checker.finish(head)


async def _verify_command(url: str, name: ChainName) -> int:
    conn = await asyncpg.connect(url, server_settings={"search_path": "allowance"})
    try:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            verdict = await verify_chain(conn, name)
    finally:
        await conn.close()
    print(verdict.render(CHAIN_TITLES[name]))
    return 0 if verdict.ok else 1


async def cmd_ledger_verify(args: argparse.Namespace, env: dict[str, str]) -> int:
    return await _verify_command(need(env, "DATABASE_URL"), "ledger")


async def cmd_audit_verify(args: argparse.Namespace, env: dict[str, str]) -> int:
    return await _verify_command(need(env, "DATABASE_URL"), "payee_access")


# --- draws --------------------------------------------------------------------------------


def verify_draw_record(
    data: Any, commitment: str | None, entry_list_hash: str | None
) -> tuple[int, list[str]]:
    """Check a published draw record as docs/verify_draw.py does (`fair_draw.verify`, which
    the tests hold to the same lines as that script): exit code 0 verified, 1 with each
    difference, 2 if the record is not of the published shape."""
    from matcher.domain import fair_draw

    try:
        record = fair_draw.DrawRecord.from_dict(data)
    except ValueError as exc:
        return 2, [f"malformed: {exc}"]
    check = fair_draw.verify(
        record, published_commitment=commitment, published_entry_list_hash=entry_list_hash
    )
    if check.verified:
        return 0, ["verified"]
    return 1, [str(d) for d in check.differences]


async def cmd_draw_verify(args: argparse.Namespace, env: dict[str, str]) -> int:
    async with api(env, "MATCHER_URL", "ADMIN_TOKEN") as client:
        published = await client.matcher_admin.published_draw(args.posting_id)
    if published is None:
        raise CliError(f"posting {args.posting_id} has no draw")
    if published.get("record") is None:
        raise CliError(
            f"the draw of {args.posting_id} has not run yet (status {published.get('status')})"
        )
    # The values seen published at opening and at close: given, or the matcher's own.
    code, lines = verify_draw_record(
        published["record"],
        args.commitment or published.get("commitment"),
        args.entry_list_hash or published.get("entry_list_hash"),
    )
    for line in lines:
        print(line)
    return code


Command = Callable[[argparse.Namespace, dict[str, str]], Coroutine[Any, Any, int]]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="gwangsan",
        description="Operate Danggeun Gwangsan: facilities and their keys, the partner's API"
        " token, rates, caps, budget, month close and payout file, the shared clock"
        " (test/demo), dead letters, partner notifications, invariants, ledger, audit-log and"
        " draw verification."
        " Reads .run/stack.env or the environment.",
    )
    sub = p.add_subparsers(dest="group", required=True, metavar="COMMAND")

    d = sub.add_parser("dlq", help="list and replay dead-letter topics")
    dsub = d.add_subparsers(dest="action", required=True)
    dl = dsub.add_parser("list", help="dead letters waiting (all DLQs, or one topic's)")
    dl.add_argument("topic", nargs="?", help="source topic, e.g. registry.postings.v1")
    dl.add_argument("--limit", type=int, default=100)
    dl.set_defaults(run=cmd_dlq_list)
    dr = dsub.add_parser("replay", help="republish a topic's dead letters after the fix")
    dr.add_argument("topic", help="source topic, e.g. registry.postings.v1")
    dr.add_argument("--limit", type=int, default=1000)
    dr.add_argument("--yes", action="store_true", help="do not ask")
    dr.set_defaults(run=cmd_dlq_replay)
    dd = dsub.add_parser(
        "discard", help="record that a triaged dead letter is not to be replayed (audited)"
    )
    dd.add_argument(
        "id", help="the dead letter's id as `dlq list` shows it (topic:partition:offset)"
    )
    dd.add_argument("--reason", required=True, help="why it is discarded (kept on record)")
    dd.add_argument("--by", help="who discards it (default: user@host)")
    dd.add_argument("--limit", type=int, default=10_000, help="how far into the DLQ to look")
    dd.add_argument("--yes", action="store_true", help="do not ask")
    dd.set_defaults(run=cmd_dlq_discard)

    n = sub.add_parser("notifications", help="partner notifications that failed, and resending")
    nsub = n.add_subparsers(dest="action", required=True)
    nl = nsub.add_parser("list", help="notifications by status (default: failed)")
    nl.add_argument("--status", choices=["failed", "pending", "delivered"], default="failed")
    nl.set_defaults(run=cmd_notifications_list)
    nr = nsub.add_parser("resend", help="send notifications again (after the partner is back)")
    nr.add_argument("ids", nargs="*", help="notification ids")
    nr.add_argument("--all-failed", action="store_true", help="every parked (failed) one")
    nr.add_argument("--yes", action="store_true", help="do not ask")
    nr.set_defaults(run=cmd_notifications_resend)

    f = sub.add_parser("facility", help="facilities: register, list, edit, suspend, resume, keys")
    fsub = f.add_subparsers(dest="action", required=True)
    fc = fsub.add_parser("create", help="register a facility (its key is shown once)")
    fc.add_argument("--name", required=True)
    fc.add_argument("--kind", required=True, choices=FACILITY_KINDS)
    fc.add_argument("--dong", required=True, help="one of Gwangsan-gu's administrative dongs")
    fc.add_argument("--address")
    fc.add_argument("--phone", help="contact phone")
    fc.add_argument(
        "--child-safety-check",
        action="store_true",
        help="its shifts need the child-safety check (children's facilities)",
    )
    fc.add_argument("--yes", action="store_true", help="do not ask")
    fc.set_defaults(run=cmd_facility_create)
    fl = fsub.add_parser("list", help="every facility")
    fl.add_argument("--status", choices=["active", "suspended"])
    fl.set_defaults(run=cmd_facility_list)
    fs = fsub.add_parser("show", help="one facility and what administrators changed on it")
    fs.add_argument("facility_id")
    fs.set_defaults(run=cmd_facility_show)
    fe = fsub.add_parser("edit", help="change name, kind, dong, address or contact phone")
    fe.add_argument("facility_id")
    fe.add_argument("--name")
    fe.add_argument("--kind", choices=FACILITY_KINDS)
    fe.add_argument("--dong")
    fe.add_argument("--address")
    fe.add_argument("--phone", help="contact phone")
    fe.add_argument("--clear-address", action="store_true", help="remove the address")
    fe.add_argument("--clear-phone", action="store_true", help="remove the contact phone")
    fe.add_argument("--yes", action="store_true", help="do not ask")
    fe.set_defaults(run=cmd_facility_edit)
    fp = fsub.add_parser("suspend", help="stop its keys and cancel its open postings")
    fp.add_argument("facility_id")
    fp.add_argument("--yes", action="store_true", help="do not ask")
    fp.set_defaults(run=cmd_facility_suspend)
    fu = fsub.add_parser("resume", help="lift a suspension (issues a new key)")
    fu.add_argument("facility_id")
    fu.add_argument("--yes", action="store_true", help="do not ask")
    fu.set_defaults(run=cmd_facility_resume)
    fr = fsub.add_parser("rotate-key", help="issue a new API key; the old one stops working")
    fr.add_argument("facility_id")
    fr.add_argument(
        "--overlap",
        type=duration_s,
        help="how long the old key keeps working: seconds or 30m, 1h, 7d (default: the"
        " configured overlap, 0 out of the box)",
    )
    fr.add_argument("--yes", action="store_true", help="do not ask")
    fr.set_defaults(run=cmd_rotate_key)

    r = sub.add_parser("rates", help="hourly rates and the minimum wages they are checked against")
    rsub = r.add_subparsers(dest="action", required=True)
    rsub.add_parser("show", help="the tables in force").set_defaults(run=cmd_rates_show)
    rs = rsub.add_parser("set", help="set the rate from a date (other rows kept)")
    rs.add_argument("--from", dest="effective_from", required=True, help="YYYY-MM-DD (Seoul)")
    rs.add_argument("--won", type=int, required=True, help="hourly rate in won")
    rs.add_argument("--source", required=True, help="where the figure comes from")
    rs.add_argument("--note", default="", help="why the table changes")
    rs.add_argument("--yes", action="store_true", help="do not ask")
    rs.set_defaults(run=cmd_rates_set)
    rw = rsub.add_parser("set-minimum-wage", help="set a year's statutory minimum wage")
    rw.add_argument("--year", type=int, required=True)
    rw.add_argument("--won", type=int, required=True, help="hourly minimum wage in won")
    rw.add_argument("--source", required=True)
    rw.add_argument("--note", default="")
    rw.add_argument("--yes", action="store_true", help="do not ask")
    rw.set_defaults(run=cmd_minimum_wage_set)

    c = sub.add_parser("caps", help="weekly hours and monthly allowance caps per year")
    csub = c.add_subparsers(dest="action", required=True)
    csub.add_parser("show", help="the table in force").set_defaults(run=cmd_caps_show)
    cs = csub.add_parser("set", help="set a year's caps (other years kept)")
    cs.add_argument("--year", type=int, required=True)
    cs.add_argument("--weekly-hours", type=int, required=True, help="booked hours per ISO week")
    cs.add_argument("--monthly-won", type=int, required=True, help="won per Seoul month")
    cs.add_argument("--source", required=True)
    cs.add_argument("--note", default="")
    cs.add_argument("--yes", action="store_true", help="do not ask")
    cs.set_defaults(run=cmd_caps_set)

    pa = sub.add_parser("partner", help="the partner's API token (pull API)")
    pasub = pa.add_subparsers(dest="action", required=True)
    pr = pasub.add_parser(
        "rotate-token",
        help="issue a new partner API token; the old ones work for the overlap (audited)",
    )
    pr.add_argument(
        "--overlap-s", type=int, help="seconds the current tokens keep working (0 after a leak)"
    )
    pr.add_argument("--yes", action="store_true", help="do not ask")
    pr.set_defaults(run=cmd_partner_rotate_token)
    pn = pasub.add_parser(
        "new-token", help="print a fresh token to configure as PARTNER_API_TOKEN (offline)"
    )
    pn.set_defaults(run=cmd_partner_new_token)

    b = sub.add_parser("budget", help="the programme budget: total, reserved, accrued, available")
    b.add_argument("--fiscal-year", type=int)
    b.set_defaults(run=cmd_budget)
    bsub = b.add_subparsers(dest="action", required=False)
    bw = bsub.add_parser("show", help="the finance figures (the default)")
    bw.add_argument("--fiscal-year", type=int)
    bw.set_defaults(run=cmd_budget)
    bs = bsub.add_parser("set", help="set a fiscal year's total (a ledger entry)")
    bs.add_argument("--fiscal-year", type=int, required=True)
    bs.add_argument("--amount-won", type=int, required=True, help="the new total")
    bs.add_argument("--note", required=True, help="why (e.g. the council decision)")
    bs.add_argument("--yes", action="store_true", help="do not ask")
    bs.set_defaults(run=cmd_budget_set)

    m = sub.add_parser("month", help="month close, payout file, paid")
    msub = m.add_subparsers(dest="action", required=True)
    mc = msub.add_parser("close", help="close a month (freeze statements, enable the payout file)")
    mc.add_argument("period", help="yyyy-mm")
    mc.add_argument("--yes", action="store_true", help="do not ask")
    mc.set_defaults(run=cmd_close_month)
    mf = msub.add_parser("payout-file", help="a closed month's bank file (CSV) or its summary")
    mf.add_argument("period", help="yyyy-mm")
    mf.add_argument("--output", help="where to save the CSV (default payout-<period>.csv)")
    mf.add_argument("--summary", action="store_true", help="print the masked lines instead")
    mf.add_argument("--yes", action="store_true", help="overwrite without asking")
    mf.set_defaults(run=cmd_payout_file)
    mp = msub.add_parser("mark-paid", help="record that the payout file was transferred")
    mp.add_argument("period", help="yyyy-mm")
    mp.add_argument("--yes", action="store_true", help="do not ask")
    mp.set_defaults(run=cmd_mark_paid)

    k = sub.add_parser("clock", help="the shared clock (only with APP_ENV test or demo)")
    ksub = k.add_subparsers(dest="action", required=True)
    ksub.add_parser("show", help="what time the services think it is").set_defaults(
        run=cmd_clock_show
    )
    ks = ksub.add_parser("set", help="move the clock (forward only)")
    when = ks.add_mutually_exclusive_group(required=True)
    when.add_argument("at", nargs="?", help="an ISO 8601 instant with its offset")
    when.add_argument("--advance", type=duration_s, help="move forward: seconds or 30m, 2h, 3d")
    ks.add_argument("--yes", action="store_true", help="do not ask")
    ks.set_defaults(run=cmd_clock_set)

    i = sub.add_parser(
        "invariants",
        help="check capacity, overlaps, payouts, ledger, decisions, outboxes, DLQs (exit 0/1)",
    )
    i.add_argument("--posting", action="append", help="only this posting (repeat)")
    i.add_argument("--citizen", action="append", help="only this citizen (repeat)")
    i.add_argument("--fiscal-year", type=int, help="only postings of this fiscal year")
    i.add_argument("--settle", type=float, default=0.0, help="retry for up to this many seconds")
    i.set_defaults(run=cmd_invariants)

    lg = sub.add_parser("ledger", help="the allowance ledger's hash chain")
    lgsub = lg.add_subparsers(dest="action", required=True)
    lv = lgsub.add_parser(
        "verify", help="recompute the ledger transactions' hash chain (exit 0 verified, 1 not)"
    )
    lv.set_defaults(run=cmd_ledger_verify)
    au = sub.add_parser("audit", help="the payee access log's hash chain")
    ausub = au.add_subparsers(dest="action", required=True)
    av = ausub.add_parser(
        "verify", help="recompute the payee access log's hash chain (exit 0 verified, 1 not)"
    )
    av.set_defaults(run=cmd_audit_verify)

    dw = sub.add_parser("draw", help="a posting's draw (docs/fairness.md)")
    dwsub = dw.add_subparsers(dest="action", required=True)
    dv = dwsub.add_parser(
        "verify",
        help="fetch the published draw record and recompute it"
        " (exit 0 verified, 1 differences, 2 malformed)",
    )
    dv.add_argument("posting_id")
    dv.add_argument("--commitment", help="the commitment you saw when the posting opened")
    dv.add_argument("--entry-list-hash", help="the entry-list hash you saw at close")
    dv.set_defaults(run=cmd_draw_verify)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    run: Command = args.run
    try:
        return asyncio.run(run(args, stack_env()))
    except (CliError, ApiError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (httpx.HTTPError, OSError) as exc:
        print(f"error: could not reach the service: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
