"""`gwangsan`: the operator's command line.

Every command reads addresses and tokens from the environment or `.run/stack.env` (what
`make up` writes), says what it is about to change and asks before changing anything
(`--yes` skips the question, for scripts), then says what it did.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import socket
import sys
from collections.abc import Callable, Coroutine, Sequence
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


# --- facilities, budget, month close -------------------------------------------------------


async def cmd_rotate_key(args: argparse.Namespace, env: dict[str, str]) -> int:
    if not confirm(
        f"Issue a new key for facility {args.facility_id}? The old one stops working.", args.yes
    ):
        print("nothing changed")
        return 1
    async with api(env, "REGISTRY_URL", "ADMIN_TOKEN") as client:
        body = await client.registry_admin.rotate_facility_key(args.facility_id)
    print(f"new key for {args.facility_id} (shown once; give it to the facility):")
    print(body.get("api_key", body))
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


def _won(value: Any) -> str:
    return f"{int(value):,} won" if isinstance(value, int) else str(value)


async def cmd_budget(args: argparse.Namespace, env: dict[str, str]) -> int:
    params = {"fiscal_year": args.fiscal_year} if args.fiscal_year else {}
    async with api(env, "ALLOWANCE_URL", "FINANCE_TOKEN") as client:
        body = await client.finance.get_budget(**params)
    for key, value in body.items():
        print(f"{key:<16} {_won(value) if key.endswith('_won') else value}")
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


Command = Callable[[argparse.Namespace, dict[str, str]], Coroutine[Any, Any, int]]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="gwangsan",
        description="Operate Danggeun Gwangsan: dead letters, partner notifications, invariants,"
        " facility keys, the partner's API token, budget, month close, ledger and audit-log"
        " verification."
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

    f = sub.add_parser("facility", help="facility keys")
    fsub = f.add_subparsers(dest="action", required=True)
    fr = fsub.add_parser("rotate-key", help="issue a new API key; the old one stops working")
    fr.add_argument("facility_id")
    fr.add_argument("--yes", action="store_true", help="do not ask")
    fr.set_defaults(run=cmd_rotate_key)

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

    m = sub.add_parser("month", help="month close")
    msub = m.add_subparsers(dest="action", required=True)
    mc = msub.add_parser("close", help="close a month (freeze statements, enable the payout file)")
    mc.add_argument("period", help="yyyy-mm")
    mc.add_argument("--yes", action="store_true", help="do not ask")
    mc.set_defaults(run=cmd_close_month)

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
