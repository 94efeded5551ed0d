"""Bank details from the partner at the allowance (issue 16, decision 0014), without I/O:
the sealed box opens with the allowance's private key, the checks of domain/banks.py
decide, accepted details are stored digits only and sealed at rest, refused ones are not
stored at all, and each answer names the submission's webhook-id."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, cast

from allowance.payees import PayeeCipher, Sealed
from allowance.settings import Context
from allowance.store import PayeeRow, Store
from allowance.usecases import payees

from shared.events import Envelope, PayeeAccepted, PayeeRejected, PayeeSubmitted
from shared.payee_seal import BankDetails, Opener, Sealer, new_private_key_spec, public_key_spec

from .fakes import FakeStore

NOW = datetime(2031, 5, 2, 9, 0, tzinfo=UTC)
CITIZEN = "ctz_0123456789abcdef0123"
PRIVATE = new_private_key_spec()


class PayeeStore(FakeStore):
    """The fake store with the payee writes recorded."""

    def __init__(self) -> None:
        super().__init__()
        self.payees: dict[str, dict[str, Any]] = {}
        self.access: list[dict[str, Any]] = []

    async def upsert_payee(self, **row: Any) -> PayeeRow:
        self.payees[row["citizen_id"]] = row
        return PayeeRow(
            row["citizen_id"], row["bank_code"], row["account_masked"],
            row["holder_masked"], row["key_id"], NOW, NOW,
        )  # fmt: skip

    async def log_payee_access(self, **row: Any) -> None:
        self.access.append(row)


class Ctx:
    """What the use case reads from the service context."""

    def __init__(self, opener: Opener | None) -> None:
        self.cipher = PayeeCipher({"k1": bytes(range(32))}, "k1")
        self.opener = opener

    def resource_or_none(self, kind: type[Any]) -> Any:
        return self.opener if kind is Opener else None

    def resource(self, kind: type[Any]) -> Any:
        assert kind is PayeeCipher
        return self.cipher

    def now(self) -> datetime:
        return NOW


def _submitted(details: BankDetails, *, user: str = "karrot_7") -> tuple[Envelope, PayeeSubmitted]:
    sealed = Sealer(public_key_spec(PRIVATE)).seal(user, details)
    event = PayeeSubmitted(
        partner_user_id=user,
        citizen_id=CITIZEN,
        webhook_id="msg_submission_1",
        consent_at=NOW,
        received_at=NOW,
        seal_key_id=sealed.key_id,
        sealed_details=sealed.sealed_b64,
    )
    return event.envelope(producer="matcher", occurred_at=NOW, event_id=uuid.uuid4()), event


async def _run(details: BankDetails, **kw: Any) -> tuple[PayeeStore, Ctx]:
    db, ctx = PayeeStore(), Ctx(Opener(PRIVATE))
    envelope, event = _submitted(details, **kw)
    await payees.on_payee_submitted(cast(Store, db), envelope, event, cast(Context, ctx))
    return db, ctx


async def test_accepted_details_are_stored_digits_only_sealed_and_answered() -> None:
    db, ctx = await _run(BankDetails("011", "302-1234-5678-11", " 홍길동 "))
    row = db.payees[CITIZEN]
    assert row["source"] == "partner" and row["webhook_id"] == "msg_submission_1"
    assert row["account_masked"] == "***-****-7811" and row["holder_masked"] == "홍*동"
    assert b"3021234567811" not in row["ciphertext"]
    opened = ctx.cipher.open(CITIZEN, Sealed(row["key_id"], row["nonce"], row["ciphertext"]))
    assert (opened.account_number, opened.account_holder) == ("3021234567811", "홍길동")
    assert [a["action"] for a in db.access] == ["write"] and db.access[0]["actor_role"] == "partner"
    [answer] = db.events(PayeeAccepted)
    assert (answer.citizen_id, answer.partner_user_id, answer.webhook_id) == (
        CITIZEN, "karrot_7", "msg_submission_1",
    )  # fmt: skip
    assert CITIZEN in db.citizens


async def test_refused_details_store_nothing_and_say_every_field() -> None:
    db, _ = await _run(BankDetails("999", "12ab", ""))
    assert db.payees == {} and db.access == []
    [answer] = db.events(PayeeRejected)
    assert answer.reason == "unknown_bank" and answer.webhook_id == "msg_submission_1"
    assert [(r.field, r.code) for r in answer.refusals] == [
        ("bank_code", "unknown_bank"),
        ("account_number", "bad_account_number"),
        ("account_holder", "holder_missing"),
    ]
    assert CITIZEN in db.citizens  # the citizen exists, whatever the details


async def test_a_box_sealed_for_another_user_is_unreadable_and_not_stored() -> None:
    db, ctx = PayeeStore(), Ctx(Opener(PRIVATE))
    envelope, event = _submitted(BankDetails("011", "3021234567811", "홍길동"), user="karrot_1")
    forged = event.model_copy(update={"partner_user_id": "karrot_2"})
    await payees.on_payee_submitted(cast(Store, db), envelope, forged, cast(Context, ctx))
    assert db.payees == {}
    [answer] = db.events(PayeeRejected)
    assert answer.reason == "unreadable" and answer.refusals == []
