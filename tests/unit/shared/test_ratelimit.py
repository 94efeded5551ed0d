"""Request limits and lockouts (shared/ratelimit.py), on a fake clock so every boundary is
exact: a burst is admitted whole and one more is refused; tokens come back at the rate; a
key id that presented more than N bad secrets in the window is refused until the window
has passed; the tables stay bounded."""

from __future__ import annotations

from pathlib import Path

import httpx
from fastapi import APIRouter

from shared.ratelimit import Lockout, RequestLimits, TokenBuckets


class FakeTime:
    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


def test_a_burst_is_admitted_then_one_more_waits_for_the_rate() -> None:
    time = FakeTime()
    buckets = TokenBuckets(rate_per_s=2, burst=3, now=time)
    assert [buckets.take("a") for _ in range(3)] == [None, None, None]
    assert buckets.take("a") == 0.5  # one token comes back in 1/2 s
    assert buckets.take("b") is None  # another key has its own bucket
    time.now_s += 0.5
    assert buckets.take("a") is None
    assert buckets.take("a") is not None


def test_the_bucket_table_is_bounded_and_forgetting_only_makes_it_lenient() -> None:
    buckets = TokenBuckets(rate_per_s=1, burst=1, keys_max=2, now=FakeTime())
    assert buckets.take("a") is None and buckets.take("a") is not None
    buckets.take("b")
    buckets.take("c")  # "a" is forgotten: a fresh bucket next time
    assert buckets.take("a") is None


def test_more_than_the_allowed_bad_secrets_lock_the_key_for_the_rest_of_the_window() -> None:
    time = FakeTime()
    lockout = Lockout(failures_max=20, window_s=60, now=time)
    for _ in range(20):
        lockout.fail("key1")
    assert lockout.blocked_for_s("key1") is None  # 20 is allowed
    time.now_s += 10
    lockout.fail("key1")
    assert lockout.blocked_for_s("key1") == 50  # the first failure leaves the window in 50 s
    assert lockout.blocked_for_s("key2") is None
    time.now_s += 50
    assert lockout.blocked_for_s("key1") is None


async def test_the_service_answers_429_with_retry_after_past_a_credentials_limit(
    tmp_path: Path,
) -> None:
    """Through the real middleware: a credential's burst passes, the next request is a 429
    problem with Retry-After (counted like any answer); another credential is unaffected."""
    from shared.service import ServiceSpec, create_app
    from shared.settings import ServiceSettings

    router = APIRouter()

    @router.get("/v1/ping")
    async def ping() -> dict[str, bool]:
        return {"ok": True}

    spec = ServiceSpec(
        name="rl", title="x", description="", migrations_dir=tmp_path, routers=[router]
    )
    settings = ServiceSettings(
        role="api", http_rate_per_credential_per_s=0.1, http_rate_per_credential_burst=2
    )
    transport = httpx.ASGITransport(app=create_app(spec, settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        one = {"authorization": "Bearer one"}
        assert [(await client.get("/v1/ping", headers=one)).status_code for _ in range(2)] == [
            200,
            200,
        ]
        refused = await client.get("/v1/ping", headers=one)
        assert refused.status_code == 429
        assert refused.json()["code"] == "too_many_requests"
        assert int(refused.headers["retry-after"]) >= 1
        assert (
            await client.get("/v1/ping", headers={"authorization": "Bearer two"})
        ).status_code == 200


def test_exempt_addresses_skip_the_address_limit_only() -> None:
    limits = RequestLimits(
        address_rate_per_s=1,
        address_burst=1,
        credential_rate_per_s=1,
        credential_burst=1,
        exempt_addresses=frozenset({"10.0.0.9"}),
        now=FakeTime(),
    )
    assert limits.check("10.0.0.9", None) is None and limits.check("10.0.0.9", None) is None
    assert limits.check("10.0.0.1", None) is None and limits.check("10.0.0.1", None) is not None
    assert limits.check("10.0.0.9", b"Bearer k") is None
    assert limits.check("10.0.0.9", b"Bearer k") is not None
