"""A small seeded scenario driven the way facilities and the partner drive the system, in
steps a failure can be injected between (or during), and the checks that nothing was lost
or duplicated afterwards.

Every client call is retried the way a real client retries: the facility with the same
`Idempotency-Key`, the partner with the same `webhook-id` and body, through refused
connections, 5xx and 503s, until the answer is final. So a kill at any instant must end in
exactly the state a calm run ends in, and `assert_outcome` checks that state in every
service's database, on `matcher.bookings.v1` and at the partner.

Seeds: `FAILURE_SEED=<n>` replays a run (the victims, the moments of the kills, the
citizens); without it a fresh seed is drawn and printed.
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

import devstack as stack
from shared import topics
from shared.events import Envelope
from shared.kafka import stack_client_kwargs
from shared.seoul import SEOUL
from tools import invariants
from tools.invariants import Report
from tools.partner_sim import client as partner

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("registry", "matcher", "allowance")
DECISIONS = ("BookingConfirmed", "BookingWaitlisted", "BookingRejected")
DECISION_NOTES = ("booking.confirmed", "booking.waitlisted", "booking.rejected")
RETRYABLE = {408, 425, 429, 500, 502, 503, 504}
CALL_TIMEOUT_S = 150.0
SETTLE_TIMEOUT_S = 120.0

# One round: a first-come posting of CAPACITY seats, APPLICANTS citizens apply at once, then
# the first of them withdraws. Whatever the order, the end is CAPACITY confirmed, one
# waitlisted, one cancelled.
CAPACITY = 2
APPLICANTS = 4
SHIFT_MINUTES = 120
BUDGET_RAISE_WON = 15_000_000
ATTENDED_MINUTES = 60
ROUNDS_MAX = 200


def failure_seed() -> int:
    """`FAILURE_SEED` if set (to replay a failure), else a fresh one."""
    given = os.environ.get("FAILURE_SEED")
    seed = int(given) if given else random.SystemRandom().randrange(1, 2**31)
    print(f"failure seed={seed}")
    return seed


# --- the stack --------------------------------------------------------------------------


async def kill9(component: str, env: dict[str, str]) -> None:
    """SIGKILL one component (for a service, `devstack.kill9` also waits until the kernel
    has let go of its port, so `up` can restart it at once)."""
    await asyncio.to_thread(stack.kill9, component)


async def wait_ready(http: httpx.AsyncClient, env: dict[str, str], timeout_s: float = 120) -> None:
    """Until every service answers /readyz 200 (Kafka and Postgres reachable)."""
    deadline = time.monotonic() + timeout_s
    pending = [env[f"{name.upper()}_URL"] for name in SERVICES]
    while pending:
        url = pending[0]
        try:
            if (await http.get(url + "/readyz", timeout=3)).status_code == 200:
                pending.pop(0)
                continue
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} not ready after {timeout_s} s")
        await asyncio.sleep(0.2)


async def restore(http: httpx.AsyncClient, env: dict[str, str]) -> None:
    """Start whatever is not running (idempotent) and wait until all is ready.

    A start that fails is tried again (twice at most) and said: on a shared machine a
    port can still be held for a moment by the process just killed."""
    for attempt in range(3):
        try:
            await asyncio.to_thread(stack.up)
            break
        except stack.StackError as exc:
            if attempt == 2:
                raise
            print(f"restart failed, trying again: {exc}")
            await asyncio.sleep(1)
    await wait_ready(http, env)


# --- retrying client calls --------------------------------------------------------------


async def retrying(
    what: str,
    call: Callable[[], Awaitable[httpx.Response]],
    ok: Iterable[int],
    *,
    retry_also: Iterable[int] = (),
    timeout_s: float = CALL_TIMEOUT_S,
) -> httpx.Response:
    """`call` until it answers one of `ok`; connection errors and 5xx are retried."""
    wanted, again = set(ok), RETRYABLE | set(retry_also)
    deadline = time.monotonic() + timeout_s
    last: str = "no answer"
    while time.monotonic() < deadline:
        try:
            response = await call()
        except httpx.HTTPError as exc:
            last = f"{type(exc).__name__}: {exc}"
        else:
            if response.status_code in wanted:
                return response
            if response.status_code not in again:
                raise AssertionError(f"{what}: {response.status_code} {response.text}")
            last = f"{response.status_code} {response.text[:200]}"
        await asyncio.sleep(0.25)
    raise AssertionError(f"{what}: no final answer in {timeout_s} s; last: {last}")


@dataclass(frozen=True)
class Delivery:
    """One partner webhook, kept so it can be replayed byte for byte."""

    webhook_id: str
    body: bytes
    posting_id: str
    application_id: str


@dataclass
class Round:
    posting_id: str
    starts_at: datetime
    applicants: list[tuple[str, str]] = field(default_factory=list)  # (application, user)
    withdrawn: set[str] = field(default_factory=set)


class Scenario:
    """A facility, a budget, and rounds of post → apply → withdraw, all seeded."""

    def __init__(
        self, env: dict[str, str], http: httpx.AsyncClient, rng: random.Random, label: str
    ) -> None:
        self.env = env
        self.http = http
        self.rng = rng
        self.label = label
        self.admin = {"Authorization": f"Bearer {env['ADMIN_TOKEN']}"}
        self.secret = env["PARTNER_WEBHOOK_SECRET"].split(",")[0].strip()
        self.rounds: list[Round] = []
        self.deliveries: list[Delivery] = []
        self.attended: list[Round] = []
        self.facility_key = ""
        self.base = datetime.min
        self.now = datetime.min

    def _id(self, prefix: str) -> str:
        return f"{prefix}{self.rng.getrandbits(64):016x}"

    @property
    def posting_ids(self) -> list[str]:
        return [r.posting_id for r in self.rounds]

    async def setup(self) -> None:
        """A facility of its own, and budget for the fiscal years the shifts fall in."""
        r = await retrying(
            "clock",
            lambda: self.http.get(self.env["REGISTRY_URL"] + "/v1/admin/clock", headers=self.admin),
            [200],
        )
        self.now = datetime.fromisoformat(r.json()["now"])
        # Far enough ahead that no promotion or strike cutoff is near, within the horizon.
        self.base = (self.now + timedelta(days=40 + self.rng.randrange(0, 200))).replace(
            minute=0, second=0, microsecond=0
        )
        years = {self._start(i).astimezone(SEOUL).year for i in range(ROUNDS_MAX)}
        for year in sorted(years):
            await self._raise_budget(year)
        created = await retrying(
            "create facility",
            lambda: self.http.post(
                self.env["REGISTRY_URL"] + "/v1/admin/facilities",
                headers=self.admin,
                json={
                    "name": f"장애 시험 복지관 {self.label}",
                    "kind": "welfare_centre",
                    "dong": "수완동",
                    "requires_child_safety_check": False,
                },
            ),
            [201],
        )
        self.facility_key = created.json()["api_key"]

    def _start(self, index: int) -> datetime:
        return self.base + timedelta(hours=3 * index)

    async def _raise_budget(self, year: int) -> None:
        """Add to the year's budget without losing what others set (compare-and-set)."""
        url = self.env["ALLOWANCE_URL"] + "/v1/admin/budget"
        for _ in range(20):
            current = await self.http.get(url, params={"fiscal_year": year}, headers=self.admin)
            total = current.json()["total_won"] if current.status_code == 200 else 0
            response = await self.http.put(
                url,
                headers=self.admin,
                json={
                    "fiscal_year": year,
                    "amount_won": total + BUDGET_RAISE_WON,
                    "note": f"failure suite {self.label}",
                    "previous_amount_won": total,
                },
            )
            if response.status_code == 200:
                return
            assert response.status_code == 409, response.text
        raise AssertionError(f"could not raise the budget of {year}")

    # --- the steps ---------------------------------------------------------------------

    async def run_round(self) -> Round:
        """Post a shift, wait until it is open, apply with every citizen, withdraw one."""
        index = len(self.rounds)
        assert index < ROUNDS_MAX
        starts_at = self._start(index)
        idempotency_key = uuid.UUID(int=self.rng.getrandbits(128)).hex
        facility = {"Authorization": f"Bearer {self.facility_key}"}
        shift = {
            "title": f"배식 도우미 {self.label}-{index}",
            "starts_at": starts_at.isoformat(),
            "ends_at": (starts_at + timedelta(minutes=SHIFT_MINUTES)).isoformat(),
            "capacity": CAPACITY,
            "selection": "first_come",
        }
        created = await retrying(
            "create posting",
            lambda: self.http.post(
                self.env["REGISTRY_URL"] + "/v1/postings",
                headers={**facility, "Idempotency-Key": idempotency_key},
                json=shift,
            ),
            [201],
            retry_also=[409],  # the same key still in flight
        )
        rnd = Round(created.json()["id"], starts_at)
        self.rounds.append(rnd)
        await self._until_open(rnd.posting_id, facility)

        rnd.applicants = [(self._id("app_f"), self._id("karrot_f")) for _ in range(APPLICANTS)]
        await asyncio.gather(*(self._apply(rnd, a, u) for a, u in rnd.applicants))
        application_id, user = rnd.applicants[0]
        await self._send(
            rnd.posting_id,
            application_id,
            partner.webhook_body(
                "application.withdrawn",
                {
                    "application_id": application_id,
                    "posting_id": rnd.posting_id,
                    "partner_user_id": user,
                },
            ),
        )
        rnd.withdrawn.add(application_id)
        return rnd

    async def run_attended_round(self, kill: Callable[[str], Awaitable[None]]) -> Round:
        """A shift starting in a few minutes (this fiscal year), two citizens confirmed,
        the shared clock moved past its end, and attendance recorded for each booking
        separately, `kill(step)` called after each record (the test kills there)."""
        facility = {"Authorization": f"Bearer {self.facility_key}"}
        r = await retrying(
            "clock",
            lambda: self.http.get(self.env["REGISTRY_URL"] + "/v1/admin/clock", headers=self.admin),
            [200],
        )
        now = datetime.fromisoformat(r.json()["now"])
        starts_at = (now + timedelta(minutes=15)).replace(microsecond=0)
        ends_at = starts_at + timedelta(minutes=ATTENDED_MINUTES)
        await self._raise_budget(starts_at.astimezone(SEOUL).year)
        key = uuid.UUID(int=self.rng.getrandbits(128)).hex
        shift = {
            "title": f"경로당 배식 {self.label}",
            "starts_at": starts_at.isoformat(),
            "ends_at": ends_at.isoformat(),
            "capacity": 2,
            "selection": "first_come",
        }
        created = await retrying(
            "create posting",
            lambda: self.http.post(
                self.env["REGISTRY_URL"] + "/v1/postings",
                headers={**facility, "Idempotency-Key": key},
                json=shift,
            ),
            [201],
            retry_also=[409],
        )
        rnd = Round(created.json()["id"], starts_at)
        self.attended.append(rnd)
        await self._until_open(rnd.posting_id, facility)
        rnd.applicants = [(self._id("app_f"), self._id("karrot_f")) for _ in range(2)]
        await asyncio.gather(*(self._apply(rnd, a, u) for a, u in rnd.applicants))
        roster_url = f"{self.env['REGISTRY_URL']}/v1/postings/{rnd.posting_id}/roster"
        deadline = time.monotonic() + CALL_TIMEOUT_S
        while True:
            roster = await retrying(
                "roster", lambda: self.http.get(roster_url, headers=facility), [200]
            )
            bookings = [
                e["booking_id"] for e in roster.json()["entries"] if e["status"] == "confirmed"
            ]
            if len(bookings) == 2:
                break
            assert time.monotonic() < deadline, f"not confirmed: {roster.text}"
            await asyncio.sleep(0.1)
        later = (ends_at + timedelta(minutes=1)).isoformat()
        await retrying(
            "move the clock",
            lambda: self.http.put(
                self.env["REGISTRY_URL"] + "/v1/admin/clock",
                headers=self.admin,
                json={"now": later},
            ),
            [200, 409],  # 409: someone moved it further already
        )
        url = f"{self.env['REGISTRY_URL']}/v1/postings/{rnd.posting_id}/attendance"
        for step, booking_id in enumerate(bookings):
            record = {
                "booking_id": booking_id,
                "status": "attended",
                "checked_in_at": starts_at.isoformat(),
                "checked_out_at": ends_at.isoformat(),
            }
            await retrying(
                f"attendance of {booking_id}",
                lambda record=record: self.http.put(  # type: ignore[misc]
                    url, headers=facility, json={"records": [record]}
                ),
                [200],
            )
            await kill(f"attendance {step + 1}")
        return rnd

    async def _until_open(self, posting_id: str, facility: dict[str, str]) -> None:
        """The registry opened it (budget reserved) and the matcher knows it."""
        deadline = time.monotonic() + CALL_TIMEOUT_S
        url = f"{self.env['REGISTRY_URL']}/v1/postings/{posting_id}"
        while True:
            r = await retrying("read posting", lambda: self.http.get(url, headers=facility), [200])
            status = r.json()["status"]
            if status == "open":
                break
            assert status == "pending_budget", f"posting {posting_id} is {status}: {r.text}"
            assert time.monotonic() < deadline, f"posting {posting_id} never opened"
            await asyncio.sleep(0.1)
        matcher_url = f"{self.env['MATCHER_URL']}/v1/admin/postings/{posting_id}"
        while True:
            r = await retrying(
                "matcher posting",
                lambda: self.http.get(matcher_url, headers=self.admin),
                [200, 404],
            )
            if r.status_code == 200:
                return
            assert time.monotonic() < deadline, f"the matcher never saw {posting_id}"
            await asyncio.sleep(0.1)

    async def _apply(self, rnd: Round, application_id: str, user: str) -> None:
        verified = self.now - timedelta(days=30)
        body = partner.webhook_body(
            "application.submitted",
            {
                "application_id": application_id,
                "posting_id": rnd.posting_id,
                "citizen": partner.citizen_profile(user, neighbourhood_verified_at=verified),
            },
        )
        await self._send(rnd.posting_id, application_id, body)

    async def _send(self, posting_id: str, application_id: str, body: bytes) -> None:
        delivery = Delivery(self._id("msg_f"), body, posting_id, application_id)
        self.deliveries.append(delivery)
        await self.deliver(delivery)

    async def deliver(self, delivery: Delivery) -> httpx.Response:
        """Sign (afresh each try: the timestamp moves) and send until 202."""
        return await retrying(
            f"webhook {delivery.webhook_id}",
            lambda: partner.send_webhook(
                self.http,
                delivery.body,
                webhook_id=delivery.webhook_id,
                secret=self.secret,
                matcher_url=self.env["MATCHER_URL"],
            ),
            [202],
        )


# --- settling ---------------------------------------------------------------------------


async def outbox_backlog(conn: asyncpg.Connection, keys: list[str]) -> dict[str, int]:
    """Unpublished outbox rows of these keys (postings), per service."""
    return {
        schema: int(
            await conn.fetchval(
                f"SELECT count(*) FROM {schema}.outbox"
                " WHERE published_at IS NULL AND key = ANY($1::text[])",
                keys,
            )
        )
        for schema in SERVICES
    }


async def consumers_behind(bootstrap: str, wait_s: float) -> dict[str, int]:
    """Take the end offsets of every topic a service's consumer group reads, then wait
    (at most `wait_s`) until each group has committed up to them. Returns how far each
    group still is behind that snapshot (empty: all caught up). Traffic that arrives
    after the snapshot (other suites) does not count."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **stack_client_kwargs())
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, **stack_client_kwargs()
    )
    await admin.start()
    await consumer.start()
    try:
        partitions = {t.name: t.partitions for t in topics.TOPICS}
        wanted: dict[str, dict[TopicPartition, int]] = {}
        for group, _ in await admin.list_consumer_groups():
            service, _, topic = str(group).partition(".")
            if service in SERVICES and topic in topics.SOURCE_TOPICS:
                tps = [TopicPartition(topic, p) for p in range(partitions[topic])]
                wanted[str(group)] = await consumer.end_offsets(tps)
        deadline = time.monotonic() + wait_s
        while True:
            behind: dict[str, int] = {}
            for group, ends in wanted.items():
                committed = await admin.list_consumer_group_offsets(group, partitions=list(ends))
                missing = 0
                for tp, end in ends.items():
                    meta = committed.get(tp)
                    done = meta.offset if meta is not None and meta.offset >= 0 else 0
                    missing += max(0, end - done)
                if missing:
                    behind[group] = missing
            if not behind or time.monotonic() > deadline:
                return behind
            await asyncio.sleep(0.2)
    finally:
        await consumer.stop()
        await admin.close()


class SimKeeper:
    """The partner simulator the matcher notifies: shared when someone already runs one
    on that port, else (and again whenever it stops answering) started here."""

    def __init__(self, url: str, env: dict[str, str]) -> None:
        self.url = url
        self.port = urlsplit(url).port
        self.env = env
        self.procs: list[subprocess.Popen[bytes]] = []

    def answers(self) -> bool:
        try:
            r = httpx.get(self.url + "/healthz", timeout=1)
        except httpx.HTTPError:
            return False
        return r.status_code == 200 and r.json().get("service") == "partner_sim"

    def ensure(self) -> None:
        if self.answers():
            return
        proc = subprocess.Popen(
            [sys.executable, "-m", "tools.partner_sim", "--port", str(self.port)],
            cwd=ROOT,
            env={**os.environ, **self.env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.procs.append(proc)
        deadline = time.monotonic() + 20
        while not self.answers():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("the partner simulator did not start")
            time.sleep(0.1)

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
            proc.wait(timeout=10)


async def settle(
    admin_dsn: str,
    bootstrap: str,
    posting_ids: list[str],
    *,
    seed: int,
    sim: SimKeeper | None = None,
    timeout_s: float = SETTLE_TIMEOUT_S,
) -> float:
    """Until the outbox rows of these postings are published, every consumer group has
    caught up with what was on its topics, and every partner notification of these
    postings is delivered — twice in a row (consuming can write new outbox rows).
    Returns the seconds it took."""
    began = time.monotonic()
    conn = await asyncpg.connect(admin_dsn)
    try:
        calm = 0
        last: dict[str, Any] = {}
        while calm < 2:
            if sim is not None:
                await asyncio.to_thread(sim.ensure)
            try:
                lag = await consumers_behind(bootstrap, wait_s=10)
            except KafkaError as exc:  # e.g. the group coordinator still loading
                lag = {f"unknown ({type(exc).__name__})": 1}
            backlog = await outbox_backlog(conn, posting_ids)
            notes = await conn.fetchval(
                "SELECT count(*) FROM matcher.partner_notifications"
                " WHERE posting_id = ANY($1::text[]) AND status <> 'delivered'",
                posting_ids,
            )
            last = {
                "outbox": backlog,
                "lag": {g: n for g, n in lag.items() if n},
                "notifications_undelivered": notes,
            }
            quiet = not any(backlog.values()) and not any(lag.values()) and notes == 0
            calm = calm + 1 if quiet else 0
            if time.monotonic() - began > timeout_s:
                raise AssertionError(f"not settled after {timeout_s} s (seed={seed}): {last}")
            await asyncio.sleep(0.3 if quiet else 0.5)
        return time.monotonic() - began
    finally:
        await conn.close()


# --- reading topics ---------------------------------------------------------------------


async def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, **stack_client_kwargs()
    )
    await consumer.start()
    try:
        partitions = {t.name: t.partitions for t in topics.TOPICS}[topic]
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        return {tp.partition: off for tp, off in (await consumer.end_offsets(tps)).items()}
    finally:
        await consumer.stop()


async def read_topic(
    bootstrap: str, topic: str, since: dict[int, int] | None = None
) -> list[tuple[int, int, bytes | None, bytes]]:
    """Every record of `topic` from `since` (default: the beginning) to its end now, as
    (partition, offset, key, value)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        isolation_level="read_committed",
        **stack_client_kwargs(),
    )
    await consumer.start()
    try:
        partitions = {t.name: t.partitions for t in topics.TOPICS}[topic]
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        starts = await consumer.beginning_offsets(tps)
        for tp in tps:
            consumer.seek(tp, max(starts[tp], (since or {}).get(tp.partition, 0)))
        out: list[tuple[int, int, bytes | None, bytes]] = []
        deadline = time.monotonic() + 60
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            assert time.monotonic() < deadline, f"could not read {topic} to its end"
            batches = await consumer.getmany(*tps, timeout_ms=200, max_records=5000)
            for tp, records in batches.items():
                out.extend(
                    (tp.partition, r.offset, r.key, r.value or b"")
                    for r in records
                    if r.offset < ends[tp]
                )
        return out
    finally:
        await consumer.stop()


def envelopes_of(
    records: list[tuple[int, int, bytes | None, bytes]], keys: set[str]
) -> list[Envelope]:
    """Distinct envelopes (by event id: a relay may publish twice after a crash) of `keys`."""
    seen: set[uuid.UUID] = set()
    out: list[Envelope] = []
    for _, _, key, value in records:
        if key is None or key.decode(errors="replace") not in keys:
            continue
        try:
            envelope = Envelope.from_bytes(value)
        except ValueError:
            continue
        if envelope.event_id not in seen:
            seen.add(envelope.event_id)
            out.append(envelope)
    return out


# --- the outcome ------------------------------------------------------------------------


async def snapshot(admin_dsn: str, posting_ids: list[str]) -> dict[str, Any]:
    """Counts of every effect of these postings in every service (to compare before and
    after a replay or a redelivery)."""
    conn = await asyncpg.connect(admin_dsn)
    try:
        one = "posting_id = ANY($1::text[])"
        queries = {
            "matcher.applications": f"SELECT status, count(*) FROM matcher.applications WHERE {one} GROUP BY 1",
            "matcher.notifications": f"SELECT type, count(*) FROM matcher.partner_notifications WHERE {one} GROUP BY 1",
            "matcher.outbox": "SELECT event_type, count(*) FROM matcher.outbox WHERE key = ANY($1::text[]) GROUP BY 1",
            "registry.bookings": f"SELECT status, count(*) FROM registry.bookings WHERE {one} GROUP BY 1",
            "registry.outbox": "SELECT event_type, count(*) FROM registry.outbox WHERE key = ANY($1::text[]) GROUP BY 1",
            "allowance.reservations": f"SELECT status, count(*) FROM allowance.reservations WHERE {one} GROUP BY 1",
            "allowance.entries": f"SELECT account, count(*) FROM allowance.ledger_entries WHERE {one} GROUP BY 1",
            "allowance.outbox": "SELECT event_type, count(*) FROM allowance.outbox WHERE key = ANY($1::text[]) GROUP BY 1",
        }
        return {
            name: {r[0]: r[1] for r in await conn.fetch(sql, posting_ids)}
            for name, sql in queries.items()
        }
    finally:
        await conn.close()


async def assert_outcome(
    scenario: Scenario,
    admin_dsn: str,
    bootstrap: str,
    bookings_since: dict[int, int],
    sim_url: str,
    *,
    seed: int,
) -> dict[str, int]:
    """The state a calm run ends in, in every service, and nothing twice. Returns figures."""
    where = f"(seed={seed}, FAILURE_SEED={seed} replays it)"
    ids = scenario.posting_ids
    assert ids, f"no round was played {where}"
    applications = {a for r in scenario.rounds for a, _ in r.applicants}
    withdrawn = {a for r in scenario.rounds for a in r.withdrawn}
    conn = await asyncpg.connect(admin_dsn)
    try:
        rows = await conn.fetch(
            "SELECT application_id, posting_id, status FROM matcher.applications"
            " WHERE posting_id = ANY($1::text[])",
            ids,
        )
        per_app = Counter(r["application_id"] for r in rows)
        assert set(per_app) == applications, f"applications lost or foreign {where}"
        assert set(per_app.values()) == {1}, f"an application stored twice {where}"
        status = {r["application_id"]: r["status"] for r in rows}
        for rnd in scenario.rounds:
            mine = Counter(status[a] for a, _ in rnd.applicants)
            assert mine == {"confirmed": CAPACITY, "waitlisted": 1, "cancelled": 1}, (
                f"{rnd.posting_id}: {dict(mine)} {where}"
            )
        for a in withdrawn:
            assert status[a] == "cancelled", f"{a} withdrawn but {status[a]} {where}"

        drift = await conn.fetch(
            """
            SELECT p.posting_id, p.capacity, p.confirmed_count, p.waitlisted_count
              FROM matcher.postings p
             WHERE p.posting_id = ANY($1::text[])
               AND (p.confirmed_count > p.capacity
                    OR p.confirmed_count <> (SELECT count(*) FROM matcher.applications a
                        WHERE a.posting_id = p.posting_id AND a.status = 'confirmed')
                    OR p.waitlisted_count <> (SELECT count(*) FROM matcher.applications a
                        WHERE a.posting_id = p.posting_id AND a.status = 'waitlisted'))
            """,
            ids,
        )
        assert not drift, f"matcher counters drift {[dict(r) for r in drift]} {where}"

        registry = await conn.fetch(
            "SELECT p.id, p.status, p.reservation_id,"
            " count(*) FILTER (WHERE b.status = 'confirmed') AS confirmed,"
            " count(*) FILTER (WHERE b.status = 'waitlisted') AS waitlisted,"
            " count(*) FILTER (WHERE b.status = 'cancelled') AS cancelled,"
            " count(b.*) AS bookings, count(DISTINCT b.application_id) AS applications"
            " FROM registry.postings p LEFT JOIN registry.bookings b ON b.posting_id = p.id"
            " WHERE p.id = ANY($1::text[]) GROUP BY p.id",
            ids,
        )
        assert len(registry) == len(ids), f"postings lost in the registry {where}"
        for r in registry:
            assert r["status"] == "open" and r["reservation_id"], f"{dict(r)} {where}"
            assert (r["confirmed"], r["waitlisted"], r["cancelled"]) == (CAPACITY, 1, 1), (
                f"registry roster of {r['id']}: {dict(r)} {where}"
            )
            assert r["bookings"] == r["applications"] == APPLICANTS, f"{dict(r)} {where}"

        reservations = await conn.fetch(
            "SELECT posting_id, status, amount_won FROM allowance.reservations"
            " WHERE posting_id = ANY($1::text[])",
            ids,
        )
        assert sorted(r["posting_id"] for r in reservations) == sorted(ids), where
        assert {r["status"] for r in reservations} == {"active"}, where
        reserved_per_posting = await conn.fetch(
            "SELECT e.posting_id, count(DISTINCT t.source_event_id) AS events,"
            " sum(e.amount_won) FILTER (WHERE e.account = 'budget_reserved') AS reserved"
            " FROM allowance.ledger_entries e JOIN allowance.ledger_transactions t"
            "   ON t.id = e.transaction_id"
            " WHERE e.posting_id = ANY($1::text[]) AND t.kind = 'reservation'"
            " GROUP BY e.posting_id",
            ids,
        )
        amount = {r["posting_id"]: r["amount_won"] for r in reservations}
        assert len(reserved_per_posting) == len(ids), f"reservations not in the ledger {where}"
        for r in reserved_per_posting:
            assert r["events"] == 1, f"{r['posting_id']} reserved {r['events']} times {where}"
            assert abs(r["reserved"]) == amount[r["posting_id"]], f"{dict(r)} {where}"
        unbalanced = await conn.fetchval(
            "SELECT count(*) FROM (SELECT t.id FROM allowance.ledger_transactions t"
            " JOIN allowance.ledger_entries e ON e.transaction_id = t.id"
            " WHERE t.id IN (SELECT transaction_id FROM allowance.ledger_entries"
            "                 WHERE posting_id = ANY($1::text[]))"
            " GROUP BY t.id HAVING sum(e.amount_won) <> 0) u",
            ids,
        )
        assert unbalanced == 0, f"{unbalanced} unbalanced ledger transactions {where}"
    finally:
        await conn.close()

    records = await read_topic(bootstrap, topics.MATCHER_BOOKINGS, bookings_since)
    events = envelopes_of(records, set(ids))
    decisions = Counter(e.data["application_id"] for e in events if e.type in DECISIONS)
    assert decisions == dict.fromkeys(applications, 1), (
        f"decisions per application on {topics.MATCHER_BOOKINGS}: "
        f"{ {a: decisions.get(a, 0) for a in applications if decisions.get(a) != 1} } {where}"
    )
    same = Counter((e.type, e.data["application_id"]) for e in events)
    doubled = {k: n for k, n in same.items() if n > 1}
    assert not doubled, f"booking events duplicated: {doubled} {where}"
    cancelled = Counter(e.data["application_id"] for e in events if e.type == "BookingCancelled")
    assert cancelled == dict.fromkeys(withdrawn, 1), f"cancellations {dict(cancelled)} {where}"

    notes = await partner.received_notifications(scenario.http, sim_url=sim_url)
    mine = [n for n in notes["items"] if n["data"].get("posting_id") in set(ids)]
    answered = Counter(n["data"].get("application_id") for n in mine if n["type"] in DECISION_NOTES)
    assert answered == dict.fromkeys(applications, 1), (
        f"partner decisions per application: "
        f"{ {a: answered.get(a, 0) for a in applications if answered.get(a) != 1} } {where}"
    )
    by_id = Counter(n["webhook_id"] for n in mine)
    assert set(by_id.values()) <= {1}, where
    return {
        "postings": len(ids),
        "applications": len(applications),
        "webhooks": len(scenario.deliveries),
        "booking_events": len(events),
        "booking_records": sum(1 for r in records if r[2] and r[2].decode() in set(ids)),
        "partner_notifications": len(mine),
    }


async def assert_paid_once(scenario: Scenario, admin_dsn: str, *, seed: int) -> dict[str, int]:
    """Every attended booking of the attended rounds is paid exactly once, in full."""
    where = f"(seed={seed}, FAILURE_SEED={seed} replays it)"
    ids = [r.posting_id for r in scenario.attended]
    conn = await asyncpg.connect(admin_dsn)
    try:
        recorded = await conn.fetch(
            "SELECT attendance_id, booking_id, status, minutes FROM registry.attendance"
            " WHERE posting_id = ANY($1::text[])",
            ids,
        )
        assert len(recorded) == 2 * len(ids), f"attendance lost {where}"
        assert {r["minutes"] for r in recorded} == {ATTENDED_MINUTES}, where
        lines = await conn.fetch(
            "SELECT attendance_id, count(*) AS n, sum(minutes_paid) AS minutes,"
            " sum(gross_won) AS gross, min(hourly_rate_won) AS rate"
            " FROM allowance.payout_lines WHERE posting_id = ANY($1::text[])"
            " AND kind = 'accrual' GROUP BY attendance_id",
            ids,
        )
        paid = {r["attendance_id"]: r for r in lines}
        assert set(paid) == {r["attendance_id"] for r in recorded}, f"unpaid attendance {where}"
        for r in paid.values():
            assert r["n"] == 1, f"{r['attendance_id']} paid {r['n']} times {where}"
            assert r["minutes"] == ATTENDED_MINUTES, f"{dict(r)} {where}"
            assert r["gross"] == r["rate"] * ATTENDED_MINUTES // 60, f"{dict(r)} {where}"
        unbalanced = await conn.fetchval(
            "SELECT count(*) FROM (SELECT t.id FROM allowance.ledger_transactions t"
            " JOIN allowance.ledger_entries e ON e.transaction_id = t.id"
            " WHERE t.id IN (SELECT transaction_id FROM allowance.payout_lines"
            "                 WHERE posting_id = ANY($1::text[]))"
            " GROUP BY t.id HAVING sum(e.amount_won) <> 0) u",
            ids,
        )
        assert unbalanced == 0, f"{unbalanced} unbalanced payout transactions {where}"
        return {
            "attended": len(recorded),
            "paid_lines": len(lines),
            "won": sum(r["gross"] for r in lines),
        }
    finally:
        await conn.close()


async def check_invariants(admin_dsn: str, bootstrap: str, posting_ids: list[str]) -> Report:
    """The project's invariant checker (`tools/invariants.py`) on these postings: capacity,
    overlaps, attendance paid once, ledger balanced, decisions, outboxes, dead letters."""
    scope = invariants.Scope.of(posting_ids=posting_ids)
    return await invariants.check(admin_dsn, kafka_bootstrap=bootstrap, scope=scope, settle_s=30)


def dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
