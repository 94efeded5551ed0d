"""A circuit breaker for one partner endpoint (what Svix and Stripe do for webhooks).

Closed: every attempt goes out. `failures_max` consecutive failed attempts (no answer, 3xx,
5xx, 408, 429) open it: for `cooldown_s` nothing is sent to the endpoint and its rows wait in
the outbox, their retry budget untouched. Then it is half-open: exactly one attempt (the
probe) goes out; a success closes it, a failure opens it for another cooldown. Any success
resets the count, so keys failing on their own on a healthy endpoint never open it.

`down`: the endpoint has been failing without a single success for `down_after_s`; the
sender reports it in a gauge an alert watches (it keeps probing once per cooldown, so it
recovers on its own).

Pure: the caller passes the monotonic time.
"""

from __future__ import annotations

from typing import Literal

State = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    def __init__(self, *, failures_max: int, cooldown_s: float, down_after_s: float) -> None:
        if failures_max < 1:
            raise ValueError("failures_max counts from 1")
        self.failures_max = failures_max
        self.cooldown_s = cooldown_s
        self.down_after_s = down_after_s
        self.state: State = "closed"
        self.failures = 0
        self.opened_at = 0.0
        self.failing_since: float | None = None  # first failure since the last success
        self._probing = False

    def allow(self, now: float) -> bool:
        """May an attempt go out now? In half-open, True once (the probe) until its result."""
        if self.state == "closed":
            return True
        if self.state == "open":
            if now - self.opened_at < self.cooldown_s:
                return False
            self.state = "half_open"
        if self._probing:
            return False
        self._probing = True
        return True

    def retry_in(self, now: float) -> float:
        """Seconds until an attempt may go out (0 when one may now or a probe is out)."""
        if self.state != "open":
            return 0.0
        return max(self.cooldown_s - (now - self.opened_at), 0.0)

    def succeeded(self) -> None:
        self.state = "closed"
        self.failures = 0
        self.failing_since = None
        self._probing = False

    def failed(self, now: float) -> None:
        self.failures += 1
        if self.failing_since is None:
            self.failing_since = now
        if self.state == "half_open" or self.failures >= self.failures_max:
            self.state = "open"
            self.opened_at = now
            self._probing = False

    def down(self, now: float) -> bool:
        return self.failing_since is not None and now - self.failing_since >= self.down_after_s
