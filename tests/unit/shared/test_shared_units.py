"""Unit tests of the shared package: no Kafka, no Postgres."""

from __future__ import annotations

import base64
import os
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pydantic
import pytest
from fastapi import FastAPI, Request
from pydantic import BaseModel

from shared import auth, events, topics, webhooks
from shared.clock import ClockWentBackwardsError, FixedClock
from shared.http import ServiceMiddleware
from shared.migrations import MigrationError, discover
from shared.problems import Problem, install

NOW = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


def secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


def test_every_event_round_trips_through_its_envelope_and_refuses_unknown_fields() -> None:
    """An event survives envelope → bytes → envelope → event; an unknown data field is refused
    (a producer's typo fails loudly); the key is the event's key field."""
    event = events.PostingClosed(posting_id="pst_1", facility_id="fac_1", closed_at=NOW)
    env = event.envelope(producer="registry", occurred_at=NOW)
    again = events.Envelope.from_bytes(env.to_bytes())
    assert events.parse_event(again) == event and again.key == "pst_1"
    bad = again.model_copy(update={"data": {**again.data, "surprise": 1}})
    with pytest.raises(pydantic.ValidationError):
        events.parse_event(bad)
    with pytest.raises(events.UnknownEventError):
        events.parse_event(again.model_copy(update={"type": "Nope"}))


def _sample_events() -> list[events.Event]:
    """Events of every shape `encode` must write as `envelope` does: nested models, fields
    left out when empty (`exclude_if`), lists of models, dates, non-ASCII text."""
    citizen = {
        "partner_user_id": "karrot_1",
        "dong": "수완동",
        "neighbourhood_verified_at": NOW,
        "adult_from": date(2008, 3, 2),
        "child_safety_check": True,
    }
    start = NOW + timedelta(days=2)
    return [
        events.ApplicationReceived(
            application_id="app_1",
            posting_id="pst_1",
            citizen=events.CitizenProfile(**citizen),
            received_at=NOW,
            webhook_id="msg_1",
        ),
        events.ApplicationReceived(
            application_id="app_2",
            posting_id="pst_1",
            citizen=events.CitizenProfile(**citizen, display_name="김민지"),
            received_at=NOW,
            webhook_id="msg_2",
        ),
        events.PostingPublished(
            posting_id="pst_1",
            facility_id="fac_1",
            facility_name="수완동 작은도서관",
            facility_dong="수완동",
            title="책 정리",
            starts_at=start,
            ends_at=start + timedelta(hours=3),
            capacity=2,
            selection="draw",
            applications_close_at=start - timedelta(days=1),
            tags=["도서관"],
            reservation_id="rsv_1",
        ),
        events.DrawCompleted(
            posting_id="pst_1",
            algorithm="efraimidis-spirakis/hmac-sha256/v2",
            seats=1,
            waitlist_room=1,
            half_weight_minutes=600,
            window_months=3,
            commitment="0" * 64,
            entry_list_hash="1" * 64,
            seed_hex="2" * 64,
            entries=[
                events.DrawEntry(entry_id="app_a", citizen_id="ctz_a", minutes_window=0),
                events.DrawEntry(entry_id="app_b", citizen_id="ctz_b", minutes_window=600),
            ],
            confirmed=["app_b"],
            waitlisted=["app_a"],
            not_selected=[],
            committed_at=NOW,
            applications_close_at=NOW,
            drawn_at=NOW,
        ),
        events.PostingClosed(posting_id="pst_1", facility_id="fac_1", closed_at=NOW),
    ]


@pytest.mark.parametrize("event", _sample_events(), ids=lambda e: type(e).__name__)
def test_an_encoded_event_is_the_bytes_of_its_envelope(event: events.Event) -> None:
    """`encode` (one serialisation pass, for the outbox and the webhook's produce) writes
    exactly what `envelope(...).to_bytes()` does, and a consumer reads the event back."""
    event_id = uuid.uuid4()
    envelope = event.envelope(producer="matcher", occurred_at=NOW, event_id=event_id)
    encoded = event.encode(producer="matcher", occurred_at=NOW, event_id=event_id)
    assert encoded.payload == envelope.to_bytes()
    assert (encoded.event_id, encoded.key) == (event_id, envelope.key)
    assert events.parse_event(events.Envelope.from_bytes(encoded.payload)) == event
    fresh = event.encode(producer="matcher", occurred_at=NOW)
    assert fresh.event_id != event_id  # a new id when none is given
    assert events.Envelope.from_bytes(fresh.payload).event_id == fresh.event_id


def test_an_event_whose_key_no_envelope_could_carry_is_refused_when_encoded() -> None:
    """`encode` skips the `Envelope` model, not its bounds: an empty or overlong key is
    refused at the producer, not found unreadable by a consumer."""
    for key in ("", "p" * (events.KEY_LENGTH_MAX + 1)):
        event = events.PostingClosed(posting_id=key, facility_id="fac_1", closed_at=NOW)
        with pytest.raises(ValueError, match="event key"):
            event.encode(producer="registry", occurred_at=NOW)
        with pytest.raises(pydantic.ValidationError):
            event.envelope(producer="registry", occurred_at=NOW)


def test_every_event_class_names_a_known_topic_and_key() -> None:
    """Each event goes to a topic of `shared.topics` and has a key field."""
    for cls in events.event_classes():
        assert cls.TOPIC in topics.SOURCE_TOPICS, cls
        assert cls.KEY_FIELD in cls.model_fields, cls
    names = {t.name for t in topics.TOPICS}
    assert all(topics.dlq_of(t) in names for t in topics.SOURCE_TOPICS)


def test_webhook_signature_verifies_and_every_bad_variant_is_a_signature_error() -> None:
    """A signed body verifies (with any of several secrets, for rotation); a tampered body, a
    wrong secret, a stale timestamp, a malformed or missing header are all SignatureError,
    never another exception (which would become a 500)."""
    key, other = secret(), secret()
    body = b'{"type":"application.submitted"}'
    headers = webhooks.sign(key, "msg_1", datetime.now(UTC), body)
    assert webhooks.verify(body, headers, [other, key]) == "msg_1"
    titled = {k.title(): v for k, v in headers.items()}  # names as a caller may write them
    assert webhooks.verify(body, titled, [key]) == "msg_1"
    stale = webhooks.sign(key, "msg_2", datetime.now(UTC) - timedelta(minutes=6), body)
    cases = [
        (body + b" ", headers, [key]),
        (body, headers, [other]),
        (body, stale, [key]),
        (body, {**headers, "webhook-signature": "garbage"}, [key]),
        (body, {**headers, "webhook-signature": "v1,@@@"}, [key]),
        (body, {**headers, "webhook-timestamp": "yesterday"}, [key]),
        (body, {k: v for k, v in headers.items() if k != "webhook-id"}, [key]),
        (body, headers, []),
    ]
    for case_body, case_headers, secrets in cases:
        with pytest.raises(webhooks.SignatureError):
            webhooks.verify(case_body, case_headers, secrets)


def test_api_keys_are_shown_once_stored_hashed_and_looked_up_by_id() -> None:
    """A key carries its lookup id; only its hash is stored; compare is exact."""
    issued = auth.issue_key()
    assert issued.secret not in issued.secret_hash
    assert auth.key_id_of(issued.secret) == issued.key_id
    assert auth.matches(issued.secret, issued.secret_hash)
    assert not auth.matches(issued.secret + "x", issued.secret_hash)
    assert auth.key_id_of("not-a-key") is None and auth.key_id_of("fk_short_x") is None


def test_fixed_clock_never_runs_backwards() -> None:
    """Time can be moved forward, never back."""
    clock = FixedClock(NOW)
    clock.advance(timedelta(days=1))
    assert clock.now() == NOW + timedelta(days=1)
    with pytest.raises(ClockWentBackwardsError):
        clock.set(NOW)


def test_migration_files_must_be_numbered_and_unique(tmp_path: Path) -> None:
    """Files are applied by number; a badly named file or a duplicate number is refused."""
    (tmp_path / "0002_b.sql").write_text("select 2")
    (tmp_path / "0001_a.sql").write_text("select 1")
    assert [m.version for m in discover(tmp_path)] == ["0001", "0002"]
    (tmp_path / "0002_c.sql").write_text("select 3")
    with pytest.raises(MigrationError):
        discover(tmp_path)
    (tmp_path / "0002_c.sql").unlink()
    (tmp_path / "3_bad.sql").write_text("select 3")
    with pytest.raises(MigrationError):
        discover(tmp_path)


def _app() -> FastAPI:
    app = FastAPI()
    install(app)
    app.add_middleware(ServiceMiddleware, service="t", body_size_max_bytes=100)

    @app.post("/echo")
    async def echo(request: Request) -> dict[str, int]:
        return {"bytes": len(await request.body())}

    @app.get("/boom")
    async def boom() -> None:
        raise Problem(409, "conflict_here", "it conflicts")

    return app


async def test_body_limit_request_id_and_problem_json() -> None:
    """Bodies over the limit get 413 problem+json (declared or streamed); every response
    carries a request id; raised problems have the RFC 9457 shape."""
    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        ok = await client.post("/echo", content=b"x" * 100)
        assert ok.status_code == 200 and ok.headers["x-request-id"]
        big = await client.post("/echo", content=b"x" * 101)
        assert big.status_code == 413
        assert big.headers["content-type"] == "application/problem+json"
        assert big.json()["code"] == "body_too_large"

        async def chunks():  # type: ignore[no-untyped-def]
            for _ in range(5):
                yield b"x" * 40

        streamed = await client.post("/echo", content=chunks())
        assert streamed.status_code == 413
        problem = await client.get("/boom", headers={"x-request-id": "req-1"})
        assert problem.status_code == 409 and problem.headers["x-request-id"] == "req-1"
        assert problem.json()["type"].endswith("/conflict_here")
        assert problem.json()["status"] == 409 and problem.json()["detail"] == "it conflicts"


def test_event_ids_can_be_derived_for_idempotent_production() -> None:
    """A caller-chosen event id is kept (the basis of replay-safe webhook ingest)."""
    event_id = uuid.uuid5(uuid.NAMESPACE_URL, "msg_1")
    event = events.PostingClosed(posting_id="p", facility_id="f", closed_at=NOW)
    assert event.envelope(producer="x", occurred_at=NOW, event_id=event_id).event_id == event_id


async def test_clock_endpoints_exist_only_in_test_and_demo(tmp_path: Path) -> None:
    """With APP_ENV=production the clock endpoints answer 404 (the real clock is used); with
    test or demo they are routed (here 503, as the app was not started: anything but 404)."""
    from shared.service import ServiceSpec, create_app
    from shared.settings import ServiceSettings

    spec = ServiceSpec(name="x", title="x", description="", migrations_dir=tmp_path)
    for env, routed in (("production", False), ("test", True), ("demo", True)):
        app = create_app(spec, ServiceSettings(app_env=env, admin_token="s3cret"))  # type: ignore[arg-type]
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            got = await client.get("/v1/admin/clock")
            put = await client.put("/v1/admin/clock", json={"now": NOW.isoformat()})
            assert (got.status_code != 404) is routed and (put.status_code != 404) is routed, env


async def test_api_docs_render_with_no_outside_network(tmp_path: Path) -> None:
    """/docs and /redoc load every script, style and icon from the service itself (the
    district's network is separated from the internet): no absolute URL to another host in
    either page, and each asset they name is served."""
    import re

    from shared.service import ServiceSpec, create_app
    from shared.settings import ServiceSettings

    spec = ServiceSpec(name="x", title="x", description="", migrations_dir=tmp_path)
    app = create_app(spec, ServiceSettings(app_env="test"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        for page in ("/docs", "/redoc"):
            html = (await client.get(page)).text
            assert not re.search(r"(src|href)=['\"]?(https?:)?//", html), page
            assets = re.findall(r"(?:src|href|url)[=:]\s*['\"](/[^'\"]+)['\"]", html)
            assert any(a.endswith(".js") for a in assets), page
            for asset in assets:
                if asset.startswith("/static-offline-docs/"):
                    served = await client.get(asset)
                    assert served.status_code == 200 and len(served.content) > 1000, asset


async def test_unhandled_errors_are_problems_with_the_request_id_and_are_counted(
    tmp_path: Path,
) -> None:
    """A route that raises answers problem+json 500 carrying the request id (header and
    body) and the failure is counted in gwangsan_http_requests_total, so the 5xx alert can
    fire; an unreachable dependency (Postgres, Kafka) is a 503 with Retry-After instead."""
    import asyncpg
    from aiokafka.errors import KafkaConnectionError
    from fastapi import APIRouter
    from prometheus_client import REGISTRY

    from shared.service import ServiceSpec, create_app
    from shared.settings import ServiceSettings

    router = APIRouter()

    @router.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret SQL text that must not leak")

    @router.get("/pg-down")
    async def pg_down() -> None:
        raise asyncpg.CannotConnectNowError("the database system is starting up")

    @router.get("/kafka-down")
    async def kafka_down() -> None:
        raise KafkaConnectionError()

    spec = ServiceSpec(
        name="errtest", title="x", description="", migrations_dir=tmp_path, routers=[router]
    )
    app = create_app(spec, ServiceSettings(role="api"))

    def counted(path: str, status: str) -> float:
        value = REGISTRY.get_sample_value(
            "gwangsan_http_requests_total",
            {"service": "errtest", "route": path, "method": "GET", "status": status},
        )
        return value or 0.0

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        before = counted("/boom", "500")
        got = await client.get("/boom", headers={"x-request-id": "req-42"})
        assert got.status_code == 500
        assert got.headers["content-type"] == "application/problem+json"
        assert got.headers["x-request-id"] == "req-42"
        assert got.json()["request_id"] == "req-42" and got.json()["code"] == "internal_error"
        assert "secret" not in got.text
        assert counted("/boom", "500") == before + 1
        for path in ("/pg-down", "/kafka-down"):
            down = await client.get(path)
            assert down.status_code == 503, path
            assert down.headers["retry-after"] == "2"
            assert down.json()["code"] == "service_unavailable"
            assert counted(path, "503") >= 1


async def test_answers_carry_safety_headers_and_limits_hold_for_chunked_bodies(
    tmp_path: Path,
) -> None:
    """Every answer says `nosniff`; API answers (ledgers, payees, keys) say `no-store`; a
    chunked body over the limit is 413, not FastAPI's 400; a 405 lists every method the path
    allows (here GET and PUT of the clock)."""
    from fastapi import APIRouter

    from shared.service import ServiceSpec, create_app
    from shared.settings import ServiceSettings

    router = APIRouter()

    @router.post("/v1/echo")
    async def echo(body: EchoBody) -> dict[str, int]:
        return {"length": len(body.text)}

    spec = ServiceSpec(
        name="hdr", title="x", description="", migrations_dir=tmp_path, routers=[router]
    )
    app = create_app(
        spec, ServiceSettings(app_env="test", role="api", http_body_size_max_bytes=1000)
    )

    async def chunks(total: int):  # type: ignore[no-untyped-def]
        for _ in range(total // 100):
            yield b"x" * 100

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        ok = await client.post("/v1/echo", json={"text": "hi"})
        assert ok.status_code == 200
        assert ok.headers["x-content-type-options"] == "nosniff"
        assert ok.headers["cache-control"] == "no-store"
        docs = await client.get("/docs")
        assert docs.headers["x-content-type-options"] == "nosniff"
        assert "cache-control" not in docs.headers
        big = await client.post(
            "/v1/echo", content=chunks(5000), headers={"content-type": "application/json"}
        )
        assert big.status_code == 413 and big.json()["code"] == "body_too_large"
        wrong = await client.delete("/v1/admin/clock")
        assert wrong.status_code == 405
        assert wrong.headers["allow"] == "GET, PUT"


class EchoBody(BaseModel):
    text: str


async def test_api_documents_are_off_in_production_unless_turned_on(tmp_path: Path) -> None:
    """In production /docs, /redoc and /openapi.json answer 404 (they list every admin route);
    a setting turns them on; test and demo always serve them."""
    from shared.service import ServiceSpec, create_app
    from shared.settings import ServiceSettings

    spec = ServiceSpec(name="x", title="x", description="", migrations_dir=tmp_path)
    cases = (
        (ServiceSettings(app_env="production"), 404),
        (ServiceSettings(app_env="production", http_api_docs_in_production=True), 200),
        (ServiceSettings(app_env="test"), 200),
    )
    for settings, status in cases:
        transport = httpx.ASGITransport(app=create_app(spec, settings))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            for path in ("/docs", "/redoc", "/openapi.json"):
                assert (await client.get(path)).status_code == status, (settings.app_env, path)


def test_production_refuses_a_database_url_without_verified_tls() -> None:
    """Bank details cross the Postgres link: in production the URL must ask for TLS with the
    certificate and host name checked; test/demo and an explicit opt-out are exempt."""
    from shared.service import insecure_database_url
    from shared.settings import ServiceSettings

    plain = "postgresql://matcher:pw@db:5432/gwangsan"
    assert insecure_database_url(ServiceSettings(app_env="production", database_url=plain))
    for mode in ("require", "verify-ca", "disable"):
        url = f"{plain}?sslmode={mode}"
        assert insecure_database_url(ServiceSettings(app_env="production", database_url=url))
    verified = f"{plain}?sslmode=verify-full&sslrootcert=/ca.crt"
    assert (
        insecure_database_url(ServiceSettings(app_env="production", database_url=verified)) is None
    )
    assert insecure_database_url(ServiceSettings(app_env="test", database_url=plain)) is None
    assert (
        insecure_database_url(
            ServiceSettings(app_env="production", database_url=plain, db_require_verified_tls=False)
        )
        is None
    )
