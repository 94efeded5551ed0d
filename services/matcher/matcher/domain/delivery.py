"""When to retry a partner notification and when to give up (park it as `failed`).

Exponential backoff with full jitter (AWS Architecture Blog, "Exponential Backoff and
Jitter"): the n-th retry waits a uniform time in [0, min(cap, base × 2^(n-1))), so partners
recovering from an outage are not hit by every sender at the same instant.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

Verdict = Literal["delivered", "retry", "park"]


def backoff_delay_s(attempts: int, base_ms: int, cap_ms: int, jitter: float) -> float:
    """Seconds to wait after the `attempts`-th failed attempt; `jitter` is uniform in [0, 1)."""
    if attempts < 1:
        raise ValueError("attempts counts from 1")
    ceiling_ms = min(cap_ms, base_ms * (1 << min(attempts - 1, 32)))
    return max(jitter, 0.0) * ceiling_ms / 1000


def is_retryable(status_code: int | None) -> bool:
    """Worth another try: no answer (timeout, refused connection), 3xx, 5xx, 408 or 429.
    A 3xx is not followed (the signed body goes to the configured URL only) but may be a
    passing misconfiguration of the partner. Any other 4xx means the partner refuses this
    notification; retrying the same bytes would be refused again, so it is parked for an
    operator at once."""
    return (
        status_code is None
        or status_code >= 500
        or status_code in (408, 429)
        or 300 <= status_code < 400
    )


def verdict(
    status_code: int | None,
    *,
    attempts: int,
    first_attempt_at: datetime,
    now: datetime,
    retry_for: timedelta,
    attempts_max: int,
) -> Verdict:
    """What to do after attempt number `attempts` answered `status_code` (None: no answer)."""
    if status_code is not None and 200 <= status_code < 300:
        return "delivered"
    if not is_retryable(status_code):
        return "park"
    if attempts >= attempts_max or now - first_attempt_at >= retry_for:
        return "park"
    return "retry"
