"""Partner notification retries: backoff with full jitter, bounded, and when to park."""

from __future__ import annotations

from datetime import timedelta

import pytest
from matcher.domain.breaker import CircuitBreaker
from matcher.domain.citizens import mask_partner_id
from matcher.domain.delivery import backoff_delay_s, is_retryable, verdict

from .builders import seoul

T0 = seoul(2026, 3, 1, 9)


def test_backoff_doubles_up_to_the_cap_and_jitter_scales_it() -> None:
    """Ceiling 100 ms, 200 ms, 400 ms, … capped at 10 s; jitter picks a point below it."""
    ceilings = [backoff_delay_s(n, 100, 10_000, 0.999999) for n in range(1, 10)]
    assert ceilings[:4] == pytest.approx([0.1, 0.2, 0.4, 0.8], rel=1e-3)
    assert max(ceilings) == pytest.approx(10.0, rel=1e-3)
    assert backoff_delay_s(3, 100, 10_000, 0.0) == 0
    assert backoff_delay_s(3, 100, 10_000, 0.5) == pytest.approx(0.2)
    assert backoff_delay_s(500, 100, 10_000, 0.5) == pytest.approx(5.0)  # no overflow


def test_what_is_retried() -> None:
    """No answer, 3xx (never followed), 5xx, 408 and 429 are retried; other 4xx are the
    partner refusing."""
    assert is_retryable(None) and is_retryable(500) and is_retryable(503)
    assert is_retryable(301) and is_retryable(307) and is_retryable(308)
    assert is_retryable(408) and is_retryable(429)
    assert not is_retryable(400) and not is_retryable(401) and not is_retryable(410)


def test_verdicts() -> None:
    """2xx delivers; a retryable failure retries until the time or attempt bound, then parks;
    a refusal parks at once."""
    kwargs = {"first_attempt_at": T0, "retry_for": timedelta(hours=1), "attempts_max": 10}
    assert verdict(204, attempts=1, now=T0, **kwargs) == "delivered"  # type: ignore[arg-type]
    assert verdict(503, attempts=1, now=T0, **kwargs) == "retry"  # type: ignore[arg-type]
    assert verdict(None, attempts=9, now=T0, **kwargs) == "retry"  # type: ignore[arg-type]
    assert verdict(None, attempts=10, now=T0, **kwargs) == "park"  # type: ignore[arg-type]
    later = T0 + timedelta(hours=1)
    assert verdict(503, attempts=2, now=later, **kwargs) == "park"  # type: ignore[arg-type]
    assert verdict(400, attempts=1, now=T0, **kwargs) == "park"  # type: ignore[arg-type]


def test_the_breaker_opens_after_failures_in_a_row_and_one_probe_decides() -> None:
    breaker = CircuitBreaker(failures_max=3, cooldown_s=10, down_after_s=25)
    for t in (0, 1):
        breaker.failed(t)
    breaker.succeeded()  # a success in between: the count starts again
    for t in (2, 3):
        breaker.failed(t)
    assert breaker.state == "closed" and breaker.allow(3)
    breaker.failed(4)
    assert breaker.state == "open" and not breaker.allow(5) and not breaker.allow(13.9)
    assert breaker.retry_in(9) == 5
    assert breaker.allow(14) and breaker.state == "half_open"  # the probe
    assert not breaker.allow(14) and not breaker.allow(20)  # one probe at a time
    breaker.failed(21)  # the probe failed: open for another cooldown
    assert breaker.state == "open" and not breaker.allow(30) and breaker.allow(31)
    assert not breaker.down(26) and breaker.down(27)  # failing since t=2 for 25 s
    breaker.succeeded()
    assert breaker.state == "closed" and breaker.allow(31) and not breaker.down(100)


def test_partner_ids_are_masked_for_rosters() -> None:
    """Facilities see `kar…42`, never the whole partner id."""
    assert mask_partner_id("karrot_user_42") == "kar…42"
    assert mask_partner_id("abcdef") == "a…f"
    assert mask_partner_id("ab") == "…"
    assert "user" not in mask_partner_id("karrot_user_42")
