"""Helpers of the matcher's real-stack tests: inject registry events, watch the bookings
topic, poll the running matcher and the partner simulator."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from shared import topics
from shared.events import Envelope, Event, PostingPublished
from shared.kafka import stack_client_kwargs

T = TypeVar("T")


def new_posting_id() -> str:
    return "pst_" + uuid.uuid4().hex[:20]


async def produce(producer: AIOKafkaProducer, event: Event, now: datetime) -> Envelope:
    """Put an event on its topic as its producer would (keyed, one envelope)."""
    envelope = event.envelope(producer="test", occurred_at=now)
    await producer.send_and_wait(event.TOPIC, envelope.to_bytes(), key=envelope.key.encode())
    return envelope


async def publish_posting(
    producer: AIOKafkaProducer,
    now: datetime,
    *,
    starts_in: timedelta = timedelta(days=2),
    minutes: int = 120,
    capacity: int = 5,
    selection: str = "first_come",
    applications_close_at: datetime | None = None,
    requires_child_safety_check: bool = False,
    posting_id: str | None = None,
) -> PostingPublished:
    """A PostingPublished for a fresh posting, as the registry would emit it."""
    starts_at = now + starts_in
    event = PostingPublished(
        posting_id=posting_id or new_posting_id(),
        facility_id="fac_matcher_tests",
        facility_name="광산구 작은도서관 (test)",
        facility_dong="수완동",
        title="책 정리 도우미",
        starts_at=starts_at,
        ends_at=starts_at + timedelta(minutes=minutes),
        capacity=capacity,
        selection=selection,  # type: ignore[arg-type]
        applications_close_at=applications_close_at,
        requires_child_safety_check=requires_child_safety_check,
        reservation_id="rsv_" + uuid.uuid4().hex[:12],
    )
    await produce(producer, event, now)
    return event


async def eventually(
    check: Callable[[], Awaitable[T | None]], *, timeout_s: float = 20, what: str = "condition"
) -> T:
    """Poll `check` until it returns something truthy; fail after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    last: T | None = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}; last: {last!r}")


class Matcher:
    """The running matcher, through its admin API."""

    def __init__(self, http: httpx.AsyncClient, url: str, admin_token: str) -> None:
        self.http = http
        self.url = url
        self.headers = {"Authorization": f"Bearer {admin_token}"}

    async def now(self) -> datetime:
        r = await self.http.get(self.url + "/v1/admin/clock", headers=self.headers)
        r.raise_for_status()
        return datetime.fromisoformat(r.json()["now"])

    async def set_clock(self, now: datetime) -> None:
        r = await self.http.put(
            self.url + "/v1/admin/clock", headers=self.headers, json={"now": now.isoformat()}
        )
        r.raise_for_status()

    async def application(self, application_id: str) -> dict[str, Any] | None:
        r = await self.http.get(
            f"{self.url}/v1/admin/applications/{application_id}", headers=self.headers
        )
        if r.status_code == 404:
            return None
        r.raise_for_status()
        result: dict[str, Any] = r.json()
        return result

    async def decided(self, application_id: str, *, timeout_s: float = 20) -> dict[str, Any]:
        """The application once it has a decision (not pending or held)."""

        async def check() -> dict[str, Any] | None:
            app = await self.application(application_id)
            if app is None or app["status"] in ("pending", "held"):
                return None
            return app

        return await eventually(check, timeout_s=timeout_s, what=f"decision on {application_id}")

    async def posting(self, posting_id: str) -> dict[str, Any] | None:
        r = await self.http.get(f"{self.url}/v1/admin/postings/{posting_id}", headers=self.headers)
        if r.status_code == 404:
            return None
        r.raise_for_status()
        result: dict[str, Any] = r.json()
        return result

    async def posting_open(self, posting_id: str) -> dict[str, Any]:
        async def check() -> dict[str, Any] | None:
            return await self.posting(posting_id)

        return await eventually(check, what=f"posting {posting_id} known to the matcher")

    async def notifications(self, status: str, **filters: str) -> list[dict[str, Any]]:
        r = await self.http.get(
            self.url + "/v1/admin/notifications",
            headers=self.headers,
            params={"status": status, "limit": "1000", **filters},
        )
        r.raise_for_status()
        items: list[dict[str, Any]] = r.json()["items"]
        return items

    async def notification_count(self, **filters: str) -> int:
        """Notifications written for the filter, whatever their delivery status."""
        total = 0
        for status in ("pending", "delivered", "failed"):
            total += len(await self.notifications(status, **filters))
        return total

    async def citizen(self, citizen_id: str) -> dict[str, Any]:
        r = await self.http.get(f"{self.url}/v1/admin/citizens/{citizen_id}", headers=self.headers)
        r.raise_for_status()
        result: dict[str, Any] = r.json()
        return result


class BookingsWatcher:
    """Everything published on `matcher.bookings.v1` since the session started."""

    def __init__(self, bootstrap: str) -> None:
        self._bootstrap = bootstrap
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self.envelopes: list[Envelope] = []

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(
            **stack_client_kwargs(),
            bootstrap_servers=self._bootstrap,
            enable_auto_commit=False,
            isolation_level="read_committed",
        )
        await consumer.start()
        partitions = {t.name: t.partitions for t in topics.TOPICS}[topics.MATCHER_BOOKINGS]
        tps = [TopicPartition(topics.MATCHER_BOOKINGS, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_end(*tps)
        for tp in tps:
            await consumer.position(tp)  # resolve the end now, before any test produces
        self._consumer = consumer
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        assert self._consumer is not None
        while True:
            batches = await self._consumer.getmany(timeout_ms=100)
            for records in batches.values():
                for record in records:
                    with contextlib.suppress(Exception):
                        self.envelopes.append(Envelope.from_bytes(record.value or b""))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()

    def of_posting(self, posting_id: str, *types: str) -> list[Envelope]:
        """Distinct events (by event id; the relay may re-publish after a crash) of a posting."""
        seen: set[uuid.UUID] = set()
        out: list[Envelope] = []
        for e in self.envelopes:
            if e.key == posting_id and (not types or e.type in types) and e.event_id not in seen:
                seen.add(e.event_id)
                out.append(e)
        return out

    async def wait_for(
        self, posting_id: str, count: int, *types: str, timeout_s: float = 20
    ) -> list[Envelope]:
        async def check() -> list[Envelope] | None:
            found = self.of_posting(posting_id, *types)
            return found if len(found) >= count else None

        return await eventually(
            check, timeout_s=timeout_s, what=f"{count} {types or 'events'} on {posting_id}"
        )


class Simulator:
    """The partner simulator's recorded notifications."""

    def __init__(self, http: httpx.AsyncClient, url: str) -> None:
        self.http = http
        self.url = url

    async def notifications(self, **filters: str) -> dict[str, Any]:
        r = await self.http.get(self.url + "/notifications", params=filters)
        r.raise_for_status()
        result: dict[str, Any] = r.json()
        return result

    async def wait_for(
        self, count: int, *, timeout_s: float = 20, **filters: str
    ) -> list[dict[str, Any]]:
        async def check() -> list[dict[str, Any]] | None:
            items: list[dict[str, Any]] = (await self.notifications(**filters))["items"]
            return items if len(items) >= count else None

        return await eventually(check, timeout_s=timeout_s, what=f"{count} notifications {filters}")

    async def outage(self, seconds: float, status: int = 503) -> None:
        r = await self.http.post(
            self.url + "/control/outage", json={"seconds": seconds, "status": status}
        )
        r.raise_for_status()
