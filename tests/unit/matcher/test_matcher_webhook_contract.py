"""The partner webhook contract (BRIEF §6) in-process: body validation says which field is
wrong, signatures from the partner simulator verify (also across a secret rotation), and
the simulator refuses our notifications when they are not signed with its secret."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast

import httpx
import orjson
import pydantic
import pytest
from matcher.api import accept_webhook
from matcher.schemas import (
    WEBHOOK_BODY,
    ApplicationSubmittedWebhook,
    parse_webhook,
    webhook_problem,
)
from matcher.settings import MatcherSettings, WebhookSecrets

from shared.problems import Problem
from shared.webhooks import SignatureError, sign, verify
from tools.partner_sim.app import create_app
from tools.partner_sim.client import citizen_profile, sign_headers, webhook_body
from tools.partner_sim.config import SimConfig


def _secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def _submitted(**data_changes: object) -> bytes:
    data = {"application_id": "app_1", "posting_id": "pst_1", "citizen": citizen_profile("k_1")}
    data.update(data_changes)
    return webhook_body("application.submitted", data)


def test_a_valid_submission_parses() -> None:
    """The partner's `application.submitted` body parses into the typed model."""
    webhook = WEBHOOK_BODY.validate_json(_submitted())
    assert isinstance(webhook, ApplicationSubmittedWebhook)
    assert webhook.data.citizen.partner_user_id == "k_1"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (_submitted(posting_id=""), "data.posting_id"),
        (_submitted(extra="x"), "data.extra"),
        (
            _submitted(citizen={**citizen_profile("k"), "birth_date": "17/05/1990"}),
            "data.citizen.birth_date",
        ),
        (
            _submitted(
                citizen={**citizen_profile("k"), "neighbourhood_verified_at": "2026-01-01T00:00:00"}
            ),
            "data.citizen.neighbourhood_verified_at",
        ),
        (webhook_body("application.exploded", {}), "type"),
        (
            b'{"type": "application.withdrawn", "timestamp": "2026-01-01T00:00:00Z", "data": {}}',
            "data.application_id",
        ),
    ],
)
def test_bad_payloads_name_the_field(body: bytes, field: str) -> None:
    """A bad body becomes a 400 problem whose `errors` name the offending field."""
    with pytest.raises(pydantic.ValidationError) as info:
        WEBHOOK_BODY.validate_json(body)
    problem = webhook_problem(info.value)
    assert problem.status == 400
    assert field in {e["field"] for e in problem.errors or []}


def test_not_json_is_a_bad_payload() -> None:
    """Garbage is refused as a 400 (never a 500)."""
    with pytest.raises(pydantic.ValidationError) as info:
        WEBHOOK_BODY.validate_json(b"\x00not json")
    assert webhook_problem(info.value).status == 400


def test_simulator_signatures_verify_and_rotation_accepts_either_secret() -> None:
    """A webhook signed by the simulator verifies against the configured secrets; during a
    rotation (old and new configured) both verify; an unknown secret does not."""
    old, new, other = _secret(), _secret(), _secret()
    body = _submitted()
    for used in (old, new):
        headers = sign_headers(body, secret=used, webhook_id="msg_1")
        assert verify(body, headers, [old, new]) == "msg_1"
    with pytest.raises(SignatureError):
        verify(body, sign_headers(body, secret=other, webhook_id="msg_1"), [old, new])


def test_tampered_stale_and_malformed_deliveries_are_signature_errors() -> None:
    """Changed body, 6-minute-old timestamp, garbage signature, missing header: all raise
    SignatureError (a 401), never anything else."""
    secret = _secret()
    body = _submitted()
    good = sign_headers(body, secret=secret, webhook_id="msg_1")
    stale = sign_headers(
        body, secret=secret, webhook_id="msg_1", timestamp=datetime.now(UTC) - timedelta(minutes=6)
    )
    cases = [
        (body.replace(b"pst_1", b"pst_2"), good),
        (body, stale),
        (body, {**good, "webhook-signature": "v1,@@@"}),
        (body, {**good, "webhook-signature": "garbage"}),
        (body, {**good, "webhook-timestamp": "nan"}),
        (body, {k: v for k, v in good.items() if k != "webhook-id"}),
    ]
    for payload, headers in cases:
        with pytest.raises(SignatureError):
            verify(payload, headers, [secret])


def test_a_signed_body_that_is_not_json_still_verifies() -> None:
    """Verification does not parse: a signed non-JSON body is the parser's 400, not a 401."""
    secret = _secret()
    body = b"not json at all"
    assert verify(body, sign_headers(body, secret=secret, webhook_id="m"), [secret]) == "m"


async def test_simulator_checks_our_signatures_and_dedupes() -> None:
    """The simulator records a notification signed with PARTNER_NOTIFY_SECRET once per
    webhook-id, refuses a wrongly signed one with 401 and counts it, and plays outages."""
    secret = _secret()
    app = create_app(
        SimConfig(matcher_url="http://unused", webhook_secret=_secret(), notify_secret=secret)
    )
    body = orjson.dumps(
        {"type": "booking.confirmed", "timestamp": "t", "data": {"booking_id": "bkg_1"}}
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as http:
        headers = sign(secret, "msg_a", datetime.now(UTC), body)
        assert (await http.post("/notifications", content=body, headers=headers)).status_code == 200
        assert (await http.post("/notifications", content=body, headers=headers)).status_code == 200
        forged = sign(_secret(), "msg_b", datetime.now(UTC), body)
        assert (await http.post("/notifications", content=body, headers=forged)).status_code == 401
        seen = (await http.get("/notifications", params={"booking_id": "bkg_1"})).json()
        assert seen["count"] == 1 and seen["duplicates"] == 1 and seen["bad_signatures"] == 1
        other = (await http.get("/notifications", params={"booking_id": "bkg_2"})).json()
        assert other["count"] == 0 and other["duplicates"] == 0  # counted per filter
        await http.post("/control/outage", json={"seconds": 60})
        headers_c = sign(secret, "msg_c", datetime.now(UTC), body)
        assert (
            await http.post("/notifications", content=body, headers=headers_c)
        ).status_code == 503


# --- issue 21: text Postgres can store, strict types, non-UTF-8, fail-fast enqueue ---------


def _problem_of(body: bytes) -> Problem:
    with pytest.raises(Problem) as info:
        parse_webhook(body)
    return info.value


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (_submitted(citizen={**citizen_profile("karrot_\u0000x")}), "data.citizen.partner_user_id"),
        (_submitted(citizen={**citizen_profile("k"), "dong": "수완\u0000동"}), "data.citizen.dong"),
        (
            webhook_body(
                "application.withdrawn",
                {"application_id": "a", "posting_id": "p", "partner_user_id": "k\u0000"},
            ),
            "data.partner_user_id",
        ),
        # a lone surrogate, as the JSON escape a partner's encoder would write
        (
            _submitted(citizen={**citizen_profile("k"), "dong": "수완SURROGATE동"}).replace(
                b"SURROGATE", b"\\ud800"
            ),
            "data.citizen.dong",
        ),
        (
            _submitted(citizen={**citizen_profile("kSURROGATE")}).replace(b"SURROGATE", b"\\udfff"),
            "data.citizen.partner_user_id",
        ),
    ],
)
def test_text_postgres_cannot_store_is_refused_naming_the_field(body: bytes, field: str) -> None:
    """A NUL character or a lone surrogate in any inbound text is a 400 naming the field
    (it was a 202, then three failed inserts, a dead letter and no decision)."""
    problem = _problem_of(body)
    assert problem.status == 400
    assert field in {e["field"] for e in problem.errors or []}


@pytest.mark.parametrize("value", ["yes", "1", 1, 0, "true", None])
def test_booleans_are_json_booleans_only(value: object) -> None:
    """`child_safety_check` is `true`/`false`: `"yes"`, `"1"`, `1`… are a 400 naming it."""
    problem = _problem_of(_submitted(citizen={**citizen_profile("k"), "child_safety_check": value}))
    assert problem.status == 400
    assert {e["field"] for e in problem.errors or []} == {"data.citizen.child_safety_check"}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("birth_date", 643593600),  # a number of seconds is not an ISO date
        ("birth_date", "1990-05-17T00:00:00Z"),
        ("neighbourhood_verified_at", 1790000000),
    ],
)
def test_dates_and_times_are_iso_strings_only(field: str, value: object) -> None:
    problem = _problem_of(_submitted(citizen={**citizen_profile("k"), field: value}))
    assert f"data.citizen.{field}" in {e["field"] for e in problem.errors or []}


def test_timestamp_as_a_number_is_refused() -> None:
    body = orjson.loads(_submitted())
    body["timestamp"] = 1790000000
    assert "timestamp" in {e["field"] for e in _problem_of(orjson.dumps(body)).errors or []}


def test_a_signed_body_that_is_not_utf8_verifies_and_is_a_bad_payload() -> None:
    """A correctly signed body that is not UTF-8 verifies (it was a 401: the library decodes
    before it checks) and is then the parser's 400; tampered or stale it is still a 401."""
    secret = _secret()
    body = _submitted().replace(b"pst_1", b"pst_\xff\xfe")
    headers = _raw_sign(secret, "msg_raw", body)
    assert verify(body, headers, [_secret(), secret]) == "msg_raw"
    assert _problem_of(body).status == 400
    with pytest.raises(SignatureError):
        verify(body + b" ", headers, [secret])
    with pytest.raises(SignatureError):
        verify(body, _raw_sign(secret, "msg_raw", body, age_s=400), [secret])
    with pytest.raises(SignatureError):
        verify(body, {**headers, "webhook-signature": "v1,@@@"}, [secret])


def _raw_sign(secret: str, webhook_id: str, body: bytes, age_s: int = 0) -> dict[str, str]:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    ts = str(int(time.time()) - age_s)
    mac = hmac.new(key, f"{webhook_id}.{ts}.".encode() + body, hashlib.sha256).digest()
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": ts,
        "webhook-signature": "v1," + base64.b64encode(mac).decode(),
    }


class _StuckProducer:
    """A producer whose broker is away: `send_and_wait` never returns."""

    def __init__(self) -> None:
        self.sent = 0

    async def send_and_wait(self, *_: object, **__: object) -> None:
        self.sent += 1
        await asyncio.sleep(3600)


@dataclass
class _FakeCtx:
    settings: MatcherSettings
    producer: object
    secrets: WebhookSecrets

    def resource(self, kind: type[object]) -> object:
        assert kind is WebhookSecrets
        return self.secrets

    def now(self) -> datetime:
        return datetime.now(UTC)


async def test_a_webhook_fails_fast_with_503_and_retry_after_when_kafka_is_away() -> None:
    """With the broker away the webhook is answered 503 with `Retry-After` after the
    bounded enqueue wait (docs/decisions/0004), not held for the producer's timeout."""
    secret = _secret()
    settings = MatcherSettings(webhook_enqueue_timeout_s=0.2)
    assert MatcherSettings().webhook_enqueue_timeout_s <= 2
    ctx = _FakeCtx(settings, _StuckProducer(), WebhookSecrets((secret,)))
    body = _submitted()
    started = time.monotonic()
    with pytest.raises(Problem) as info:
        await accept_webhook(
            cast(Any, ctx), body, sign_headers(body, secret=secret, webhook_id="msg_k")
        )
    assert time.monotonic() - started < 1.5
    assert info.value.status == 503
    assert (info.value.headers or {}).get("Retry-After")


def test_the_topic_carries_adult_from_never_the_birth_date() -> None:
    """Ingest publishes the first day of the minimum age, not the birth date (1,005 birth
    dates sat in clear on `matcher.applications.v1`); an old event with a birth date still
    parses and reads as the same `adult_from`."""
    from matcher.usecases.applications import citizen_adult_from

    from shared.events import ApplicationReceived, Envelope, parse_event

    webhook = parse_webhook(
        _submitted(citizen={**citizen_profile("k"), "birth_date": "2004-02-29"})
    )
    assert isinstance(webhook, ApplicationSubmittedWebhook)
    profile = webhook.data.citizen.to_profile(19)
    event = ApplicationReceived(
        application_id="a",
        posting_id="p",
        citizen=profile,
        received_at=datetime.now(UTC),
        webhook_id="m",
    )
    raw = event.envelope(producer="matcher", occurred_at=datetime.now(UTC)).to_bytes()
    assert b"birth_date" not in raw and b"2004-02-29" not in raw
    assert b'"adult_from":"2023-03-01"' in raw
    old = orjson.loads(raw)
    del old["data"]["citizen"]["adult_from"]
    old["data"]["citizen"]["birth_date"] = "2004-02-29"
    parsed = parse_event(Envelope.from_bytes(orjson.dumps(old)))
    assert isinstance(parsed, ApplicationReceived)
    assert citizen_adult_from(parsed.citizen, 19) == date(2023, 3, 1)
    assert citizen_adult_from(profile, 19) == date(2023, 3, 1)


@pytest.mark.parametrize(
    "body",
    [
        _submitted().replace(
            b"neighbourhood_verified_at", b"neighbourhood_verified_a\xed\xa0\x80t"
        ),
        _submitted().replace("수완동".encode(), b"\xed\xa0\x80"),
        _submitted().replace(b"pst_1", b"pst_\xff"),
        b'{"type": "application.submitted", "\\ud800": 1}',
    ],
)
def test_bodies_that_are_not_utf8_or_name_a_surrogate_are_answerable_400s(body: bytes) -> None:
    """Found by the fuzzer: an encoded surrogate in a field's name was read as text by the
    parser and the problem naming it could not be encoded (500). Each is a 400 whose
    answer encodes."""
    problem = _problem_of(body)
    assert problem.status == 400
    orjson.dumps({"detail": problem.detail, "errors": problem.errors})
    problem.detail.encode()
    for e in problem.errors or []:
        str(e["field"]).encode()


# --- the optional display name (issue 15) ------------------------------------------------


def test_a_display_name_is_optional_trimmed_and_reaches_the_topic() -> None:
    """`citizen.display_name` may be left out (no name on the topic) or given: trimmed, it
    is what ApplicationReceived carries for the facility's roster."""
    without = WEBHOOK_BODY.validate_json(_submitted())
    assert isinstance(without, ApplicationSubmittedWebhook)
    assert without.data.citizen.display_name is None
    assert "display_name" not in without.data.citizen.to_profile(19).model_dump(mode="json")

    named = WEBHOOK_BODY.validate_json(
        _submitted(citizen={**citizen_profile("k"), "display_name": "  김민지 "})
    )
    assert isinstance(named, ApplicationSubmittedWebhook)
    assert named.data.citizen.display_name == "김민지"
    assert named.data.citizen.to_profile(19).display_name == "김민지"


@pytest.mark.parametrize(
    "value",
    [42, True, ["김민지"], {"name": "김민지"}, "", "   ", "가" * 41, "a\x00b"],
    ids=["number", "boolean", "list", "object", "empty", "blank", "too-long", "nul"],
)
def test_a_bad_display_name_is_a_400_naming_it(value: object) -> None:
    """A name that is not a string, is blank, too long or unstorable: 400 naming the field."""
    body = _submitted(citizen={**citizen_profile("k"), "display_name": value})
    with pytest.raises(pydantic.ValidationError) as info:
        WEBHOOK_BODY.validate_json(body)
    problem = webhook_problem(info.value)
    assert problem.status == 400
    assert problem.errors is not None
    assert "data.citizen.display_name" in {e["field"] for e in problem.errors}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("birth_date", "1990-5-17"),  # ISO dates only: zero-padded YYYY-MM-DD
        ("birth_date", "19900517"),
        ("birth_date", "1990-W20-1"),
        ("birth_date", "2026-02-30"),  # no such day
        ("birth_date", True),
        ("neighbourhood_verified_at", "2026-01-01T00:00:00"),  # an instant needs its offset
        ("neighbourhood_verified_at", "2026-01-01"),
        ("neighbourhood_verified_at", False),
    ],
)
def test_dates_are_iso_dates_and_instants_carry_an_offset(field: str, value: object) -> None:
    """Issue 18 (strict inbound types): loose or impossible dates and offset-less instants
    are a 400 naming the field, never read in some local zone or rolled over."""
    problem = _problem_of(_submitted(citizen={**citizen_profile("k"), field: value}))
    assert {e["field"] for e in problem.errors or []} == {f"data.citizen.{field}"}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("partner_user_id", 5),
        ("partner_user_id", True),
        ("application_id", 7),
        ("posting_id", None),
    ],
)
def test_a_withdrawal_is_typed_as_strictly(field: str, value: object) -> None:
    """The withdrawal's ids are JSON strings only, like the submission's."""
    data: dict[str, object] = {
        "application_id": "app_1",
        "posting_id": "pst_1",
        "partner_user_id": "k",
    }
    data[field] = value
    problem = _problem_of(webhook_body("application.withdrawn", data))
    assert {e["field"] for e in problem.errors or []} == {f"data.{field}"}
