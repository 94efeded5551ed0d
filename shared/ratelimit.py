"""Bounded, in-process request limits: token buckets per key, and a lockout of keys that
keep presenting bad secrets.

Both live in one process's memory (no Redis): each replica limits what reaches it, so the
limit a client meets is per replica — set the numbers with the replica count in mind
(docs/security.md). Every table is bounded: when it is full the least recently seen key is
forgotten, which can only make the limiter more lenient, never lock out a stranger.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

Now = Callable[[], float]


@dataclass
class _Bucket:
    tokens: float
    at_s: float


class TokenBuckets:
    """`rate_per_s` requests a second per key, with bursts of up to `burst`."""

    def __init__(
        self,
        rate_per_s: float,
        burst: int,
        *,
        keys_max: int = 100_000,
        now: Now = time.monotonic,
    ) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("a limit needs a positive rate and a burst of at least 1")
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.keys_max = keys_max
        self._now = now
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def take(self, key: str) -> float | None:
        """Spend one token of `key`: None when allowed, else the seconds until a token."""
        now_s = self._now()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(float(self.burst), now_s)
            if len(self._buckets) > self.keys_max:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            bucket.tokens = min(
                float(self.burst), bucket.tokens + (now_s - bucket.at_s) * self.rate_per_s
            )
            bucket.at_s = now_s
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return None
        return (1.0 - bucket.tokens) / self.rate_per_s


class Lockout:
    """A key that presented more than `failures_max` bad secrets within `window_s` is
    refused (429) until the oldest of those failures leaves the window — so a guessing
    attack on one facility key id stops, while the facility's own correct key, once the
    window passes, works again."""

    def __init__(
        self,
        failures_max: int,
        window_s: float,
        *,
        keys_max: int = 100_000,
        now: Now = time.monotonic,
    ) -> None:
        if failures_max < 1 or window_s <= 0:
            raise ValueError("a lockout needs at least one failure and a positive window")
        self.failures_max = failures_max
        self.window_s = window_s
        self.keys_max = keys_max
        self._now = now
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, key: str, now_s: float) -> deque[float] | None:
        times = self._failures.get(key)
        if times is None:
            return None
        while times and times[0] <= now_s - self.window_s:
            times.popleft()
        if not times:
            del self._failures[key]
            return None
        return times

    def blocked_for_s(self, key: str) -> int | None:
        """Whole seconds `key` stays locked out (for `Retry-After`), or None."""
        now_s = self._now()
        times = self._recent(key, now_s)
        if times is None or len(times) <= self.failures_max:
            return None
        return max(1, math.ceil(times[0] + self.window_s - now_s))

    def fail(self, key: str) -> None:
        """Record one bad secret presented for `key`."""
        now_s = self._now()
        times = self._recent(key, now_s)
        if times is None:
            times = self._failures[key] = deque(maxlen=self.failures_max + 1)
            if len(self._failures) > self.keys_max:
                self._failures.popitem(last=False)
        else:
            self._failures.move_to_end(key)
        times.append(now_s)


class RequestLimits:
    """The per-address and per-credential buckets of one service process."""

    def __init__(
        self,
        *,
        address_rate_per_s: float,
        address_burst: int,
        credential_rate_per_s: float,
        credential_burst: int,
        exempt_addresses: frozenset[str] = frozenset(),
        now: Now = time.monotonic,
    ) -> None:
        self.addresses = TokenBuckets(address_rate_per_s, address_burst, now=now)
        self.credentials = TokenBuckets(credential_rate_per_s, credential_burst, now=now)
        self.exempt = exempt_addresses

    def check(self, address: str | None, credential: bytes | None) -> float | None:
        """Seconds to wait when over a limit, else None (and one token spent of each)."""
        if address is not None and address not in self.exempt:
            wait_s = self.addresses.take(address)
            if wait_s is not None:
                return wait_s
        if credential:
            # A digest, so the table never holds the secrets themselves.
            return self.credentials.take(hashlib.blake2b(credential, digest_size=16).hexdigest())
        return None
