"""End to end, issue 16: a citizen's bank details reach the allowance through the partner
(`citizen.payee_submitted`, sealed at the matcher to the allowance's key: decision 0014) or
from finance staff, and money held back for missing details is paid in the next month's
payout file. Signed webhooks and HTTP against the stack's processes; the topics are read
raw with the admin Kafka user to show no account number travels in clear."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import asyncpg
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from shared import topics
from shared.kafka import KafkaSecurity
from tools import invariants
from tools.api_client import Api, partner

from .conftest import (
    RATE_WON,
    BudgetRoom,
    FacilityMaker,
    citizen_at,
    eventually,
    move_clock,
    seoul_year,
    shift,
    wait_decided,
    wait_status,
)
from .test_e2e_money import next_month_start, period_of

pytestmark = [pytest.mark.stack, pytest.mark.slow]

ACCOUNT = "302-1234-5678-11"
ACCOUNT_DIGITS = "3021234567811"
HOLDER = "홍길순"


async def _raw_messages(stack_env: dict[str, str], topic: str) -> list[bytes]:
    """Every message on `topic` so far, as bytes (admin user, no group)."""
    security = KafkaSecurity.from_env(stack_env)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=stack_env["KAFKA_BOOTSTRAP_SERVERS"],
        enable_auto_commit=False,
        **security.client_kwargs(),
    )
    await consumer.start()
    try:
        count = next(t.partitions for t in topics.TOPICS if t.name == topic)
        parts = [TopicPartition(topic, p) for p in range(count)]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        values: list[bytes] = []
        while [p for p in parts if await consumer.position(p) < ends[p]]:
            batch = await consumer.getmany(timeout_ms=1000)
            for records in batch.values():
                values += [r.value or b"" for r in records]
        return values
    finally:
        await consumer.stop()


async def _payee_event(stack_env: dict[str, str], partner_user_id: str) -> dict[str, Any]:
    async def find() -> dict[str, Any] | None:
        for raw in await _raw_messages(stack_env, topics.MATCHER_PAYEES):
            envelope = orjson.loads(raw)
            if envelope["data"]["partner_user_id"] == partner_user_id:
                data: dict[str, Any] = envelope["data"]
                return data
        return None

    return await eventually(find, what=f"PayeeSubmitted of {partner_user_id}")


async def _notes(system: Api, kind: str, partner_user_id: str) -> list[dict[str, Any]]:
    got = await system.simulator.notifications(type=kind, partner_user_id=partner_user_id)
    items: list[dict[str, Any]] = got["items"]
    return items


async def _answer(system: Api, kind: str, partner_user_id: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        items = await _notes(system, kind, partner_user_id)
        return items[0] if items else None

    return await eventually(check, what=f"{kind} for {partner_user_id}")


async def test_partner_payee_details_are_sealed_checked_answered_and_replays_count_once(
    system: Api, stack_env: dict[str, str]
) -> None:
    """Good details: 202, then one signed `payee.accepted` naming the partner user and the
    submission's webhook-id, the details stored masked and digits-only under the citizen
    the matcher created; the same webhook-id again changes nothing. A bad bank code:
    `payee.rejected` with `unknown_bank`, nothing stored. Neither topic nor the matcher's
    outbox holds the account number or the holder in clear."""
    good_user, bad_user = partner.new_partner_user_id(), partner.new_partner_user_id()
    good_id, bad_id = partner.new_webhook_id(), partner.new_webhook_id()
    for _ in range(2):  # the second delivery is a replay of the first
        sent = await system.partner.submit_payee(
            partner_user_id=good_user,
            bank_code="011",
            account_number=ACCOUNT,
            account_holder=HOLDER,
            webhook_id=good_id,
        )
        assert sent.status_code == 202 and sent.json()["webhook_id"] == good_id
    refused = await system.partner.submit_payee(
        partner_user_id=bad_user,
        bank_code="999",
        account_number=ACCOUNT,
        account_holder=HOLDER,
        webhook_id=bad_id,
    )
    assert refused.status_code == 202

    accepted = await _answer(system, "payee.accepted", good_user)
    assert accepted["data"]["webhook_id"] == good_id
    assert accepted["data"]["status"] == "accepted"
    rejected = await _answer(system, "payee.rejected", bad_user)
    assert rejected["data"]["webhook_id"] == bad_id
    assert rejected["data"]["reason"] == "unknown_bank"
    assert {"field": "bank_code", "code": "unknown_bank"} in rejected["data"]["refusals"]

    good = await _payee_event(stack_env, good_user)
    bad = await _payee_event(stack_env, bad_user)
    assert good["citizen_id"].startswith("ctz_") and good["webhook_id"] == good_id
    stored = await system.finance.get_payee(good["citizen_id"])
    assert stored is not None
    assert stored["bank_code"] == "011" and stored["account_masked"] == "***-****-7811"
    assert HOLDER not in str(stored) and ACCOUNT_DIGITS not in str(stored)
    assert await system.finance.get_payee(bad["citizen_id"]) is None  # nothing stored

    # One effect: one accepted answer, one event for the replayed webhook-id.
    await asyncio.sleep(1.0)
    assert len(await _notes(system, "payee.accepted", good_user)) == 1
    events = [
        orjson.loads(raw)
        for raw in await _raw_messages(stack_env, topics.MATCHER_PAYEES)
        if orjson.loads(raw)["data"]["webhook_id"] == good_id
    ]
    assert len({e["event_id"] for e in events}) == 1

    # Nothing in clear: the topics, the matcher's outbox.
    secrets_in_clear = (ACCOUNT.encode(), ACCOUNT_DIGITS.encode(), HOLDER.encode())
    for topic in (topics.MATCHER_PAYEES, topics.ALLOWANCE_PAYOUTS):
        for raw in await _raw_messages(stack_env, topic):
            assert not any(s in raw for s in secrets_in_clear), topic
    conn = await asyncpg.connect(stack_env["DATABASE_URL"])
    try:
        rows = await conn.fetch(
            "SELECT payload FROM matcher.outbox WHERE event_type = 'PayeeSubmitted'"
        )
        assert all(not any(s in bytes(r["payload"]) for s in secrets_in_clear) for r in rows)
        cipher = await conn.fetchval(
            "SELECT ciphertext FROM allowance.payees WHERE citizen_id = $1", good["citizen_id"]
        )
        assert cipher is not None and ACCOUNT_DIGITS.encode() not in bytes(cipher)
    finally:
        await conn.close()


async def test_finance_payee_refs_are_citizen_ids_the_allowance_knows(system: Api) -> None:
    """`PUT /v1/payees/{citizen_ref}`: a well-formed citizen id of no citizen is a 404 and
    nothing is stored; a partner's user id is not a citizen id at all: 400."""
    base, token = system.endpoints.allowance_url, system.endpoints.finance_token
    body = {"bank_code": "004", "account_number": "123-45-678901", "account_holder": "김광산"}
    unknown = f"ctz_{uuid.uuid4().hex[:20]}"
    missing = await system.raw(base, token, "PUT", f"/v1/payees/{unknown}", json=body)
    assert missing.status_code == 404, missing.text
    assert missing.json()["code"] == "citizen_not_found"
    assert await system.finance.get_payee(unknown) is None
    malformed = await system.raw(base, token, "PUT", "/v1/payees/karrot_ux_0001", json=body)
    assert malformed.status_code == 400, malformed.text
    assert malformed.headers["content-type"].startswith("application/problem+json")
    assert await system.finance.get_payee("karrot_ux_0001") is None


async def test_money_held_back_for_missing_details_is_paid_next_month_once_they_arrive(
    system: Api,
    stack_env: dict[str, str],
    make_facility: FacilityMaker,
    budget_room: BudgetRoom,
) -> None:
    """A citizen without bank details is held back at the month's close (the money stays
    payable, carried forward); the partner then submits the details; the next month's
    close pays the carried amount into that month's payout file. The ledger shows the
    carry (payable through the first close) and the release (payout due at the second),
    balances throughout, and the invariant checker agrees."""
    now = await system.clock.get()
    start = (now + timedelta(hours=2)).replace(second=0, microsecond=0)
    end = start + timedelta(minutes=120)
    period = period_of(start)
    await budget_room(seoul_year(start), 1_000_000)
    key = (await make_facility(kind="welfare_centre"))["api_key"]
    pid = (await system.facility(key).post_posting(shift(start, 120, capacity=1)))["id"]
    await wait_status(system, key, pid, "open")
    who = citizen_at(now)
    app_id = partner.new_application_id()
    await system.partner.submit_application(posting_id=pid, citizen=who, application_id=app_id)
    booked = await wait_decided(system, app_id)
    assert booked["status"] == "confirmed"
    citizen_id = booked["citizen_id"]
    await move_clock(system, end + timedelta(minutes=5))
    await system.facility(key).record_attendance(pid, [
        {"booking_id": booked["booking_id"], "status": "attended",
         "checked_in_at": start.isoformat(), "checked_out_at": end.isoformat()},
    ])  # fmt: skip
    owed_won = RATE_WON * 2

    async def accrued() -> bool | None:
        ledger = await system.finance.get_ledger(citizen_id=citizen_id, format="json")
        return True if ledger["entries"] else None

    await eventually(accrued, what="the allowance to pay the shift")

    first_close = max(next_month_start(start), end + timedelta(hours=72)) + timedelta(minutes=5)
    await move_clock(system, first_close)
    await system.finance.close_period(period)
    summary = await system.finance.get_payout_file(period, format="json")
    held = [h for h in summary["held_back"] if h["citizen_id"] == citizen_id]
    assert held and held[0]["carried_forward_won"] == owed_won
    assert not [x for x in summary["lines"] if x["citizen_id"] == citizen_id]

    # The details arrive through the partner after the close.
    webhook_id = partner.new_webhook_id()
    await system.partner.submit_payee(
        partner_user_id=who["partner_user_id"],
        bank_code="090",
        account_number="3333-01-2345678",
        account_holder=HOLDER,
        webhook_id=webhook_id,
    )
    answer = await _answer(system, "payee.accepted", who["partner_user_id"])
    assert answer["data"]["webhook_id"] == webhook_id
    event = await _payee_event(stack_env, who["partner_user_id"])
    assert event["citizen_id"] == citizen_id  # the id on the statement, not a new one

    later = period_of(first_close)
    await move_clock(system, next_month_start(first_close) + timedelta(minutes=5))
    await system.finance.close_period(later)
    paid = await system.finance.get_payout_file(later, format="json")
    line = [x for x in paid["lines"] if x["citizen_id"] == citizen_id]
    assert line and line[0]["amount_won"] == owed_won, paid
    assert not [h for h in paid["held_back"] if h["citizen_id"] == citizen_id]
    bank_file = await system.raw(system.endpoints.allowance_url, system.endpoints.finance_token,
                                 "GET", f"/v1/periods/{later}/payout-file")  # fmt: skip
    assert bank_file.status_code == 200 and "3333012345678" in bank_file.text

    ledger = await system.finance.get_ledger(citizen_id=citizen_id, format="json")
    due: dict[str, int] = {}
    payable_won = 0
    for e in ledger["entries"]:
        if e["account"] == "allowance_payout_due":
            due[e["period"]] = due.get(e["period"], 0) - int(e["amount_won"])
            assert f"including {owed_won:,} won carried forward" in e["memo"], e["memo"]
        if e["account"] == "allowance_payable":
            payable_won -= int(e["amount_won"])
    assert due == {later: owed_won}  # released at the second close, not the first
    assert payable_won == 0  # nothing left behind
    trial = await system.finance.get_trial_balance()
    assert trial["balanced"] is True
    report = await invariants.check(
        stack_env["DATABASE_URL"],
        scope=invariants.Scope.of(posting_ids=[pid], citizen_ids=[citizen_id]),
        settle_s=20,
    )
    assert report.ok, report.problems
