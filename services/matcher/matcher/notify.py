"""The partner notification sender: the HTTP side of the `partner_notifications` outbox.

Rows are written in the decision's transaction (so a notification exists if and only if its
decision committed) and sent here after commit, signed per Standard Webhooks with
`PARTNER_NOTIFY_SECRET` and the row's stable `webhook-id`, so the partner can drop repeats.

* Prompt: a decision committed by the consumer of this process hands the notifications
  that head their keys to this process's sender at commit (`take`; no query); the
  decision's `NOTIFY` wakes the senders of every process; a poll is only the fallback.
* Ordered per key: a notification is sent only when every earlier one of its ordering key
  (its booking, or its posting) was delivered; a parked one holds the later ones back until
  an operator re-sends it, so a partner never sees `cancelled` before `confirmed`.
* Concurrent across keys, bounded by `notify_concurrency_max`.
* Retried on timeouts, refused connections, 3xx, 5xx, 408 and 429 with exponential backoff
  and full jitter, for at most `notify_retry_for_s` / `notify_attempts_max`; then parked as
  `failed` (metric `gwangsan_partner_notifications_total{outcome="failed"}`), listed and
  re-sent through `/v1/admin/notifications`. Another 4xx parks it at once.
* A well-behaved webhook client: redirects are never followed (the signed body goes only to
  `PARTNER_NOTIFY_URL`; a 3xx is a failed attempt), at most `notify_response_read_max_bytes`
  of an answer is read (a longer one is dropped with its connection), no compression is
  asked for or decoded. A backoff never holds a send slot (the retry is scheduled in the
  row's `next_attempt_at`), retries take at most `notify_retry_concurrency_max` slots, and
  a circuit breaker on the endpoint (`domain/breaker.py`) stops sending to a failing
  partner, one probe per cooldown; failing for `notify_endpoint_down_after_s` sets
  `gwangsan_partner_endpoint_down` (alert GwangsanPartnerEndpointDown).
* Sharded like the Kafka outbox relay (`shared.shards`, `shared.leader`): every worker
  process runs a sender, each holds a share of `notify_shards` shards by the hash of the
  ordering key, and a shard is sent by one process at a time, so a key's order holds while
  keys are sent from every process. A shard handed over to a process that joined is
  released only once its sends in flight ended and their deliveries were marked; a process
  that dies loses its shards with its connection, and whoever takes them over re-sends what
  was not marked, under the same `webhook-id`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import aiohttp
import asyncpg
from prometheus_client import Histogram

from matcher import store
from matcher.domain.breaker import CircuitBreaker
from matcher.domain.delivery import backoff_delay_s, is_retryable, verdict
from matcher.store import NOTIFY_CHANNEL, DeliveredMark, DueNotification, FailedAttempt
from shared import metrics
from shared.clock import utc_now
from shared.leader import (
    REBALANCE_INTERVAL_S,
    STOP_GRACE_S,
    Leases,
    keep_running,
    lead,
    stop_job,
)
from shared.shards import shard_of
from shared.waiting import wait_set
from shared.webhooks import sign

log = logging.getLogger(__name__)

NOTIFICATION_LATENCY = Histogram(
    "gwangsan_partner_notification_seconds",
    "From the decision's commit to the partner's 2xx",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60, 600),
)

_LOCK_KEY = "matcher:partner-notifications"

# The due query and its plan note live with the rest of the SQL (`store.DUE_SQL`).


class NotificationSender:
    """Sends the due notifications of its process's shards; run one per process."""

    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        url: str,
        secret: str,
        concurrency_max: int,
        timeout_ms: int,
        retry_for: timedelta,
        attempts_max: int,
        backoff_base_ms: int,
        backoff_cap_ms: int,
        poll_interval_ms: int,
        prefetch_max: int = 1_000,
        retention: timedelta = timedelta(days=30),
        lock_key: str = _LOCK_KEY,
        response_read_max_bytes: int = 4 * 1024,
        retry_concurrency_max: int | None = None,
        breaker_failures: int = 20,
        breaker_cooldown_ms: int = 10_000,
        endpoint_down_after_s: float = 300,
        shards: int = 4,
        mark_linger_ms: int = 0,
    ) -> None:
        self._pool = pool
        self._lock_key = lock_key
        self._shards = shards
        self._url = url
        self._secret = secret
        self._concurrency_max = concurrency_max
        self._timeout_s = timeout_ms / 1000
        self._retry_for = retry_for
        self._attempts_max = attempts_max
        self._backoff_base_ms = backoff_base_ms
        self._backoff_cap_ms = backoff_cap_ms
        self._poll_s = poll_interval_ms / 1000
        self._wake = asyncio.Event()
        self._mark_linger_s = mark_linger_ms / 1000
        self._wake_due: asyncio.TimerHandle | None = None  # a wake after sends ended
        self.leases: Leases | None = None  # this process's membership and shards, while led
        self._inflight: dict[str, asyncio.Task[None]] = {}  # ordering key -> its send
        self._inflight_hash: dict[str, int] = {}  # ordering key -> its hash (its shard)
        # Due heads waiting for a send slot, one per ordering key.
        self._queue: deque[DueNotification] = deque()
        self._queued: set[str] = set()
        self._stop_taking: Callable[[], None] | None = None
        self._prefetch_max = prefetch_max
        self._stopping = False
        self._retention = retention
        # Delivered, not yet marked. Their keys stay out of the due query until the mark
        # is written: the row still reads `pending` until then, and fetching it would
        # send it again.
        self._delivered: list[DeliveredMark] = []
        self._task: asyncio.Task[None] | None = None
        self._http: aiohttp.ClientSession | None = None
        self._read_max = response_read_max_bytes
        self._retry_slots = min(
            concurrency_max,
            retry_concurrency_max if retry_concurrency_max else max(concurrency_max // 2, 1),
        )
        self._retrying = 0  # sends in flight of rows already tried once
        # One breaker per endpoint; this sender sends to one (`url`).
        self.breaker = CircuitBreaker(
            failures_max=breaker_failures,
            cooldown_s=breaker_cooldown_ms / 1000,
            down_after_s=endpoint_down_after_s,
        )

    async def start(self) -> None:
        # aiohttp rather than httpx: httpx's per-request CPU capped the sender at ~400
        # notifications/s on this machine (docs/performance.md). At most `concurrency_max`
        # requests are in flight, over as many reused keep-alive connections.
        self._http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self._concurrency_max),
            timeout=aiohttp.ClientTimeout(total=self._timeout_s),
            # Ask for no compression and decode none: a small compressed answer must not
            # unpack into a large one in memory.
            skip_auto_headers=("User-Agent", "Accept-Encoding"),
            auto_decompress=False,
        )
        self._stop_taking = store.listen_committed_heads(self.take)
        self._task = asyncio.create_task(self._run(), name="partner-notifications")

    async def stop(self) -> None:
        """Let sends in flight finish (bounded by the HTTP timeout), mark them, stop."""
        self._stopping = True
        if self._wake_due is not None:
            self._wake_due.cancel()
            self._wake_due = None
        if self._stop_taking is not None:
            self._stop_taking()
            self._stop_taking = None
        inflight = list(self._inflight.values())
        if inflight:
            await asyncio.wait(inflight, timeout=self._timeout_s + 1)
            for task in inflight:
                task.cancel()
            # Their `finally` records the attempt and hands the connection back.
            await asyncio.wait(inflight, timeout=STOP_GRACE_S)
        if self._task is not None:
            # Its connection's `finally` marks what was delivered.
            await stop_job(self._task, "partner notification sender")
        if self._http is not None:
            await self._http.close()

    def wake(self) -> None:
        self._wake.set()

    async def _run(self) -> None:
        await keep_running("notification sender", self._lead)

    async def _lead(self) -> None:
        await lead(
            self._pool,
            job=self._lock_key,
            shards=self._shards,
            channel=NOTIFY_CHANNEL,
            on_notify=self._on_notify,
            work=self._loop,
            before_release=self._flush_delivered,
        )

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    def _drained(self, shard: int) -> bool:
        """Whether nothing of `shard` is in flight or delivered but unmarked: it may go to
        another process, which will see exactly what is still pending."""
        if self._delivered:
            return False  # marked at the top of the next pass
        return all(shard_of(h, self._shards) != shard for h in self._inflight_hash.values())

    async def _loop(self, conn: asyncpg.Connection, leases: Leases) -> None:
        """Keep up to `concurrency_max` sends in flight from an in-memory queue of due heads
        (one per ordering key) of the shards held, refilled by one query when it runs low
        (and fed by `take` at this process's commits); deliveries are marked in bulk before
        each refill, so the next notification of a key is seen as due as soon as the
        previous one is marked."""
        self.leases = leases
        self._queue.clear()
        self._queued.clear()
        gauges_at = 0.0
        balanced_at = time.monotonic()
        try:
            while True:
                self._wake.clear()
                await self._flush_delivered(conn)
                if time.monotonic() - balanced_at >= REBALANCE_INTERVAL_S:
                    await leases.rebalance(self._drained)
                    balanced_at = time.monotonic()
                elif leases.leaving:
                    await leases.release_drained(self._drained)
                if leases.leaving and self._queue:
                    # Nothing more of a shard being handed over is sent from here.
                    kept = [row for row in self._queue if leases.owns(row.key_hash)]
                    self._queue = deque(kept)
                    self._queued = {row.ordering_key for row in kept}
                key_ranges = leases.ranges()
                if key_ranges and len(self._queue) < self._concurrency_max:
                    exclude = [*self._queued, *self._busy_keys()]
                    rows = await store.due_notifications(
                        conn, self._prefetch_max - len(self._queue), exclude, key_ranges
                    )
                    # Sends may have started and ended while the query ran (`take`): what
                    # is in flight or delivered now is not queued again.
                    busy = self._busy_keys()
                    for row in rows:
                        key = row.ordering_key
                        if key not in self._queued and key not in busy:
                            self._queue.append(row)
                            self._queued.add(key)
                wait_s = min(self._poll_s, self._dispatch())
                if time.monotonic() - gauges_at > 10:
                    await self._refresh_gauges(conn, housekeeper=leases.housekeeper)
                    gauges_at = time.monotonic()
                if leases.leaving:
                    wait_s = min(wait_s, 0.05)  # release it as soon as its sends ended
                wait_s = min(wait_s, balanced_at + REBALANCE_INTERVAL_S - time.monotonic())
                await wait_set(self._wake, max(wait_s, 0.01))
        finally:
            self.leases = None  # nothing more is taken (`take`) until shards are held again

    def take(self, rows: Sequence[DueNotification]) -> None:
        """Notifications this process just committed, each the head of its key
        (`store.listen_committed_heads`): those of the shards held are sent now, without
        waiting for the NOTIFY and a query. One already queued, in flight or delivered is
        left alone (the query found it first)."""
        leases = self.leases
        if leases is None or self._stopping:
            return
        busy = self._busy_keys()
        for row in rows:
            key = row.ordering_key
            if leases.owns(row.key_hash) and key not in self._queued and key not in busy:
                self._queue.append(row)
                self._queued.add(key)
        self._dispatch()

    def _dispatch(self) -> float:
        """Start sends from the queue while slots are free; how long until the breaker
        lets the next one go (the poll interval when it does not hold anything back)."""
        wait_s = self._poll_s
        held: list[DueNotification] = []  # retries over their share of the slots
        while self._queue and len(self._inflight) < self._concurrency_max and not self._stopping:
            if not self.breaker.allow(time.monotonic()):
                if self.breaker.state == "open":  # else a probe is out; its end wakes us
                    wait_s = min(wait_s, max(self.breaker.retry_in(time.monotonic()), 0.01))
                break
            row = self._queue.popleft()
            if row.attempts and self._retrying >= self._retry_slots:
                held.append(row)
                continue
            self._queued.discard(row.ordering_key)
            if row.attempts:
                self._retrying += 1
            self._inflight_hash[row.ordering_key] = row.key_hash
            self._inflight[row.ordering_key] = asyncio.create_task(self._deliver(row))
        self._queue.extendleft(reversed(held))
        return wait_s

    def _busy_keys(self) -> set[str]:
        """Keys with a send in flight or delivered and not marked yet: not sent again."""
        return {*self._inflight, *(d.ordering_key for d in self._delivered)}

    async def _flush_delivered(self, conn: asyncpg.Connection) -> None:
        done, self._delivered = self._delivered, []
        if not done:
            return
        try:
            await store.mark_delivered(conn, done)
        except BaseException:
            self._delivered[:0] = done  # marked later; worst case re-sent, same webhook-id
            raise

    async def _refresh_gauges(self, conn: asyncpg.Connection, *, housekeeper: bool) -> None:
        """Refresh the backlog gauge (every process reports the whole table's, so the
        alert's `max` is right whichever process answers) and, in the holder of shard 0
        only, drop delivered rows past their retention (bounded batch; the partner had them
        long ago and deduplicates by webhook-id anyway)."""
        metrics.PARTNER_NOTIFICATIONS_PENDING.set(await store.undelivered_count(conn))
        if housekeeper:
            await store.delete_delivered_before(conn, utc_now() - self._retention)

    async def _deliver(self, row: DueNotification) -> None:
        key = row.ordering_key
        try:
            await self._attempt(row)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("notification %s: recording the attempt failed", row.notification_id)
            # Keep the key's slot a moment: a failing database must not become a hot loop.
            await asyncio.sleep(self._poll_s)
        finally:
            if row.attempts:
                self._retrying -= 1
            self._inflight.pop(key, None)
            self._inflight_hash.pop(key, None)
            self._dispatch()  # the slot goes to the next queued notification at once
            self._wake_after_send()  # the next notification of this key may be due now

    def _wake_after_send(self) -> None:
        """Wake the loop to mark what was delivered and look for what is due next, once
        `mark_linger_ms` has let the sends ending about now end too: one mark and one query
        for them all, not one pair per send."""
        if not self._mark_linger_s:
            self._wake.set()
        elif self._wake_due is None:
            self._wake_due = asyncio.get_running_loop().call_later(
                self._mark_linger_s, self._wake_after_linger
            )

    def _wake_after_linger(self) -> None:
        self._wake_due = None
        self._wake.set()

    async def _attempt(self, row: DueNotification) -> None:
        assert self._http is not None
        started = utc_now()
        status_code: int | None = None
        error: str | None = None
        headers = sign(self._secret, row.notification_id, started, row.payload)
        try:
            async with self._http.post(
                self._url, data=row.payload, headers=headers, allow_redirects=False
            ) as response:
                status_code = response.status
                body = await _read_at_most(response, self._read_max)
                if 300 <= status_code < 400:
                    location = response.headers.get("Location", "")
                    error = f"redirect to {location!r} not followed"[:500]
                elif not 200 <= status_code < 300:
                    error = body[:500].decode("utf-8", "replace")
        except (aiohttp.ClientError, TimeoutError) as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        self._record_endpoint(status_code)
        attempts = row.attempts + 1
        first_attempt_at: datetime = row.first_attempt_at or started
        now = utc_now()
        outcome = verdict(
            status_code,
            attempts=attempts,
            first_attempt_at=first_attempt_at,
            now=now,
            retry_for=self._retry_for,
            attempts_max=self._attempts_max,
        )
        if outcome == "delivered":
            assert status_code is not None
            self._delivered.append(
                DeliveredMark(
                    row.seq, row.ordering_key, attempts, first_attempt_at, now, status_code
                )
            )
            metrics.PARTNER_NOTIFICATIONS.labels("delivered").inc()
            NOTIFICATION_LATENCY.observe(max((now - row.created_at).total_seconds(), 0))
            return
        failed = FailedAttempt(row.seq, attempts, first_attempt_at, now, status_code, error)
        if outcome == "park":
            await store.park_notification(self._pool, failed)
            metrics.PARTNER_NOTIFICATIONS.labels("failed").inc()
            log.warning(
                "notification %s parked as failed after %d attempts: %s %s",
                row.notification_id,
                attempts,
                status_code,
                error,
            )
            return
        delay_s = backoff_delay_s(
            attempts, self._backoff_base_ms, self._backoff_cap_ms, random.random()
        )
        await store.retry_notification_at(self._pool, failed, now + timedelta(seconds=delay_s))
        metrics.PARTNER_NOTIFICATIONS.labels("retried").inc()
        # The slot is released now: the row stays its key's head (order holds) and is due
        # again at `next_attempt_at`; the loop is woken then, not only at the next poll.
        asyncio.get_running_loop().call_later(delay_s, self._wake.set)

    def _record_endpoint(self, status_code: int | None) -> None:
        """Feed the endpoint's breaker: an answer that is not worth a retry (2xx, or a 4xx
        refusing this one notification) shows the endpoint works."""
        breaker = self.breaker
        if is_retryable(status_code):
            now = time.monotonic()
            breaker.failed(now)
            metrics.PARTNER_ENDPOINT_BREAKER_OPEN.set(breaker.state != "closed")
            if breaker.down(now):
                metrics.PARTNER_ENDPOINT_DOWN.set(1)
        elif breaker.failing_since is not None or breaker.state != "closed":
            breaker.succeeded()
            metrics.PARTNER_ENDPOINT_BREAKER_OPEN.set(0)
            metrics.PARTNER_ENDPOINT_DOWN.set(0)


async def _read_at_most(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """At most `limit` bytes of the body; if more follows, the connection is dropped rather
    than the rest read (a partner's answer is a status, not a download)."""
    if response.content_length is not None and response.content_length > limit:
        response.close()
        return b""
    body = bytearray()
    while len(body) < limit:
        chunk = await response.content.read(limit - len(body))
        if not chunk:
            return bytes(body)
        body += chunk
    if not response.content.at_eof():
        response.close()
    return bytes(body)
