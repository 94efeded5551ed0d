"""The outbound partner contract (issue 18 item 2): the catalogue of notification types, its
reason codes with their texts, the OpenAPI `webhooks` document generated from it (valid
OpenAPI 3.1, committed copy current), docs/partner.md's generated table, and every builder
of `usecases.notifications` producing bodies the catalogue accepts — so a builder and the
published contract cannot drift apart without a stack."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from matcher import contract
from matcher.app import build
from matcher.domain import fair_draw as fd
from matcher.domain.notifications import BookingFacts
from matcher.domain.partner_reasons import (
    PAYEE_REASON_TEXTS,
    REASON_TEXTS,
    REFUSAL_TEXTS,
    SUSPENSION_REASON_TEXTS,
    PayeeReason,
    SuspensionReason,
    catalogue,
)
from matcher.domain.policy import Reason, Refusal
from matcher.settings import MatcherSettings
from matcher.store import Notification
from matcher.usecases import notifications as n
from openapi_spec_validator import validate

from shared.events import (
    AttendanceCorrected,
    AttendanceRecorded,
    PayoutAccrued,
    PayoutFailed,
    PayoutPaid,
    PayoutReversed,
    PostingPublished,
    PostingUpdated,
)
from shared.seoul import SEOUL
from shared.webhooks import sign
from tools import partner_contract
from tools.partner_sim.app import create_app as create_sim
from tools.partner_sim.config import SimConfig

ROOT = Path(__file__).resolve().parents[3]
AT = datetime(2026, 12, 18, 10, 0, 3, tzinfo=SEOUL)
START = datetime(2026, 12, 19, 10, 0, tzinfo=SEOUL)


# --- reason codes -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("codes", "texts"),
    [
        (Reason, REASON_TEXTS),
        (Refusal, REFUSAL_TEXTS),
        (PayeeReason, PAYEE_REASON_TEXTS),
        (SuspensionReason, SUSPENSION_REASON_TEXTS),
    ],
)
def test_every_reason_code_has_a_korean_and_an_english_text(codes: Any, texts: Any) -> None:
    """A new code in policy.Reason / Refusal (or the payee codes) without texts fails here."""
    assert set(texts) == set(codes), f"codes without texts: {set(codes) - set(texts)}"
    for code in codes:
        text = texts[code]
        assert any("\uac00" <= ch <= "\ud7a3" for ch in text.ko), f"{code}: no Korean text"
        assert text.en.strip(), f"{code}: no English text"


def test_the_catalogue_lists_each_code_once_with_where_it_appears() -> None:
    entries = catalogue()
    codes = [e.code for e in entries]
    assert len(codes) == len(set(codes)), "a code in two enums: one text would hide the other"
    expected = {*Reason, *Refusal, *PayeeReason, *SuspensionReason}
    assert set(codes) == {c.value for c in expected}
    for e in entries:
        assert e.types, f"{e.code} appears in no notification type"
        assert set(e.types) <= set(contract.BY_TYPE), e.types


def test_payee_codes_are_the_allowances() -> None:
    """The matcher relays the allowance's payee codes: its copy is exactly them (plus
    `unreadable`, for sealed details that do not open)."""
    banks = pytest.importorskip("allowance.domain.banks")
    assert {c.value for c in PayeeReason} == {c.value for c in banks.PayeeReason} | {"unreadable"}


# --- the catalogue and its check -----------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(contract.BY_TYPE))
def test_every_example_keeps_the_contract(kind: str) -> None:
    assert contract.check(orjson.dumps(contract.example(kind))) == []


def test_check_names_what_breaks_the_contract() -> None:
    body = contract.example("booking.waitlisted")
    body["data"]["waitlist_position"] = "2"
    body["data"]["surprise"] = True
    problems = contract.check(orjson.dumps(body))
    assert any("waitlist_position" in p for p in problems)
    assert any("surprise" in p for p in problems)
    assert contract.check(orjson.dumps({**body, "type": "booking.teleported"})) == [
        "unknown notification type 'booking.teleported'"
    ]
    assert contract.check(b"[1, 2]") == ["the body is not a JSON object"]
    no_stamp = contract.example("posting.closed")
    no_stamp["timestamp"] = "2026-12-18T10:00:03"  # no offset
    assert contract.check(orjson.dumps(no_stamp))
    rejected = contract.example("booking.rejected")
    rejected["data"]["reason"] = "bad_luck"  # a code the catalogue does not have
    assert contract.check(orjson.dumps(rejected))


# --- every builder of usecases/notifications.py ---------------------------------------------


def _facts(**overrides: Any) -> BookingFacts:
    fields: dict[str, Any] = {
        "application_id": "app-1",
        "posting_id": "pst_1",
        "citizen_id": "ctz_1",
        "citizen_display": "dg-…13",
        "partner_user_id": "dg-user-13",
        "booking_id": "bkg_1",
        "starts_at": START,
        "ends_at": START + timedelta(hours=3),
        "display_name": "김광산",
        "check_in_code": "K7MX3Q",
        **overrides,
    }
    return BookingFacts(**fields)


def _terms(**overrides: Any) -> dict[str, Any]:
    return {
        "posting_id": "pst_1",
        "facility_id": "fac_1",
        "facility_name": "수완동 작은도서관",
        "facility_dong": "수완동",
        "title": "책 정리",
        "starts_at": START,
        "ends_at": START + timedelta(hours=3),
        "capacity": 2,
        "selection": "draw",
        "applications_close_at": START - timedelta(days=1),
        "tags": ["도서관"],
        **overrides,
    }


def _attendance(cls: Any, **extra: Any) -> Any:
    return cls(
        attendance_id="att_1",
        posting_id="pst_1",
        facility_id="fac_1",
        booking_id="bkg_1",
        citizen_id="ctz_1",
        status="no_show",
        minutes=0,
        scheduled_minutes=180,
        shift_starts_at=START,
        **extra,
    )


def _payout_common() -> dict[str, Any]:
    return {
        "citizen_id": "ctz_1",
        "period": "2026-12",
        "posting_id": "pst_1",
        "booking_id": "bkg_1",
        "attendance_id": "att_1",
    }


def built_notifications() -> list[Notification]:
    """One of each body the builders make (and the variants that change its shape)."""
    facts = _facts()
    no_code = _facts(check_in_code=None)
    never_booked = _facts(booking_id=None)
    record = fd.reveal(
        bytes(32),
        fd.freeze(
            "pst_1",
            fd.commitment(bytes(32)),
            [fd.Entry("app-1", 0), fd.Entry("app-2", 300), fd.Entry("app-3", 900)],
            seats=1,
            waitlist_room=1,
            half_weight_minutes=600,
            window_months=3,
        ),
        committed_at=AT - timedelta(days=10),
        applications_close_at=AT,
        drawn_at=AT,
    )
    published = PostingPublished(**_terms(), reservation_id="rsv_1")
    updated = PostingUpdated(
        **_terms(selection="first_come", applications_close_at=None),
        revision=2,
        previous_capacity=1,
        previous_starts_at=START,
        previous_ends_at=START + timedelta(hours=3),
    )
    notes = [
        n.confirmed(facts, AT).note,
        n.confirmed(no_code, AT).note,
        n.waitlisted(facts, AT, 2).note,
        n.promoted(facts, AT).note,
        n.rejected(never_booked, AT, Reason.WEEKLY_HOURS_CAP.value).note,
        n.rejected(facts, AT, Reason.APPLICATIONS_CLOSED.value).note,
        n.cancelled(
            facts,
            AT,
            cancelled_by="citizen",
            reason=Reason.WITHDRAWN.value,
            was_confirmed=True,
            strike=True,
        ).note,
        n.cancelled(
            facts,
            AT,
            cancelled_by="system",
            reason=Reason.NOT_RECONFIRMED.value,
            was_confirmed=True,
        ).note,
        n.reminder(facts, AT, 120),
        n.reconfirm_requested(facts, AT, START - timedelta(hours=16)),
        n.reconfirm_refused("bkg_1", "dg-user-99", Refusal.CITIZEN_MISMATCH.value, AT, "msg_in_1"),
        n.waitlist_moved(facts, AT, 1, 2),
        n.attendance_recorded(facts, AT, _attendance(AttendanceRecorded)),
        n.attendance_recorded(
            facts,
            AT,
            _attendance(
                AttendanceCorrected, revision=2, previous_status="attended", previous_minutes=180
            ),
        ),
        n.strike_recorded(
            facts,
            AT,
            kind="no_show",
            occurred_at=START,
            strikes_in_window=3,
            window_days=90,
            strikes_to_suspend=3,
        ),
        n.suspended(
            facts,
            AT,
            starts_at=AT,
            ends_at=AT + timedelta(days=30),
            strikes=3,
            window_days=90,
        ),
        n.refused(
            kind="application.withdrawn",
            application_id="app-1",
            posting_id="pst_1",
            partner_user_id="dg-user-99",
            webhook_id="msg_in_2",
            reason=Refusal.UNKNOWN_APPLICATION.value,
            at=AT,
        ),
        n.payout_note(
            "payout.accrued",
            partner_user_id="dg-user-13",
            ordering_key="app-1",
            application_id="app-1",
            data=n.payout_accrued_data(
                PayoutAccrued(
                    **_payout_common(),
                    minutes_paid=180,
                    hourly_rate_won=13_303,
                    gross_won=39_909,
                    accrued_won=30_000,
                    capped_won=9_909,
                )
            ),
            at=AT,
        ),
        n.payout_note(
            "payout.reversed",
            partner_user_id="dg-user-13",
            ordering_key="bkg_1",
            application_id=None,
            data=n.payout_reversed_data(
                PayoutReversed(
                    **_payout_common(),
                    minutes_reversed=180,
                    gross_reversed_won=39_909,
                    accrued_reversed_won=30_000,
                    capped_released_won=0,
                    adjustment=True,
                )
            ),
            at=AT,
        ),
        n.posting_note(
            "posting.published", published, AT, status="open", draw_commitment="ab" * 32
        ),
        n.posting_note("posting.updated", updated, AT, status="open", capacity=2, revision=2),
        n.posting_note("posting.closed", {"posting_id": "pst_1"}, AT, status="closed"),
        n.posting_note(
            "posting.closed", {"posting_id": "pst_1"}, AT, status="cancelled", reason="admin"
        ),
        n.draw_completed(record, {"app-1": "c1", "app-2": "c2", "app-3": "c3"}, AT).note,
    ]
    paid = uuid.uuid4()
    notes.append(
        n.payment_note(
            paid, "dg-user-13", AT, PayoutPaid(citizen_id="ctz_1", period="2026-12", amount_won=1)
        )
    )
    notes.append(
        n.payment_note(
            uuid.uuid4(),
            "dg-user-13",
            AT,
            PayoutFailed(citizen_id="ctz_1", period="2026-12", amount_won=9, reason="해지 계좌"),
        )
    )
    payee_note = getattr(n, "payee_note", None)  # issue 16's builder, merged separately
    if payee_note is not None:
        answer = uuid.uuid4()
        notes.append(
            payee_note(
                "payee.accepted", answer, "dg-user-13", AT, webhook_id="msg_p", status="accepted"
            )
        )
        notes.append(
            payee_note(
                "payee.rejected",
                answer,
                "dg-user-13",
                AT,
                webhook_id="msg_p",
                status="rejected",
                reason="unknown_bank",
                refusals=[{"field": "bank_code", "code": "unknown_bank"}],
            )
        )
    return notes


def test_every_builder_makes_bodies_the_catalogue_accepts() -> None:
    for note in built_notifications():
        assert contract.check(note.payload) == [], (note.type, orjson.loads(note.payload))
        assert orjson.loads(note.payload)["type"] == note.type


def test_the_builders_make_every_catalogued_type() -> None:
    """No type in the catalogue that nothing sends, none sent that it lacks."""
    made = {note.type for note in built_notifications()}
    catalogued = set(contract.BY_TYPE)
    if not hasattr(n, "payee_note"):
        catalogued -= {"payee.accepted", "payee.rejected"}
    assert made == catalogued


# --- the OpenAPI webhooks document ----------------------------------------------------------


def _full_openapi() -> dict[str, Any]:
    """The matcher's /openapi.json (built without the stack: no lifespan runs)."""
    return build(MatcherSettings()).openapi()


def test_the_matcher_openapi_has_a_webhook_per_type_and_validates() -> None:
    doc = _full_openapi()
    assert doc["openapi"].startswith("3.1")
    assert list(doc["webhooks"]) == [t.name for t in contract.NOTIFICATION_TYPES]
    for kind, item in doc["webhooks"].items():
        post = item["post"]
        headers = {p["name"] for p in post["parameters"] if p["in"] == "header"}
        assert headers == {"webhook-id", "webhook-timestamp", "webhook-signature"}
        content = post["requestBody"]["content"]["application/json"]
        [example] = content["examples"].values()
        assert example["value"] == contract.example(kind)
        assert contract.check(orjson.dumps(example["value"])) == []
    validate(json.loads(json.dumps(doc)))


def test_committed_partner_openapi_is_current_and_valid() -> None:
    """docs/partner-openapi.json equals a fresh rendering (regenerate with
    `.venv/bin/python -m tools.partner_contract`) and is valid OpenAPI 3.1."""
    committed = (ROOT / "docs" / "partner-openapi.json").read_text("utf-8")
    assert committed == partner_contract.render_openapi()
    doc = json.loads(committed)
    validate(doc)
    assert doc["webhooks"] == _full_openapi()["webhooks"]


def test_partner_guide_reason_table_is_current() -> None:
    """docs/partner.md's reason table is the catalogue's (regenerate as above)."""
    guide = (ROOT / "docs" / "partner.md").read_text("utf-8")
    assert guide == partner_contract.guide_with_table(guide)
    for entry in catalogue():
        assert f"| `{entry.code}` |" in guide


# --- the partner simulator counts what breaks the contract ----------------------------------


async def test_the_simulator_records_contract_violations_across_resets() -> None:
    secret = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    config = SimConfig(matcher_url="http://127.0.0.1:1", webhook_secret="", notify_secret=secret)
    good = orjson.dumps(contract.example("booking.reminder"))
    bad_body = contract.example("booking.reminder")
    del bad_body["data"]["minutes_before"]
    bad = orjson.dumps(bad_body)
    transport = httpx.ASGITransport(app=create_sim(config))
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as sim:
        for i, body in enumerate((good, bad)):
            headers = sign(secret, f"msg_{i}", datetime.now(UTC), body)
            answer = await sim.post("/notifications", content=body, headers=headers)
            assert answer.status_code == 200
        await sim.post("/control/reset")
        found = (await sim.get("/contract/violations")).json()
    assert found["count"] == 1
    [violation] = found["items"]
    assert violation["webhook_id"] == "msg_1"
    assert any("minutes_before" in p for p in violation["problems"])
