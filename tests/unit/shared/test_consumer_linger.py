"""How long a consumer lets events gather (`CONSUMER_LINGER_MS`): the matcher's decisions
are fetched as soon as one event is there; the registry's and the allowance's read models
let the broker hold a fetch up to 100 ms (docs/performance.md, issue 20)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from allowance.settings import AllowanceSettings
from matcher.settings import MatcherSettings
from registry.settings import RegistrySettings

from shared.consumer import EventConsumer
from shared.events import BookingConfirmed, Envelope


class _Broker:
    """Records what each subscriber is asked for (FastStream's `subscriber` keywords)."""

    context: Any = None

    def __init__(self) -> None:
        self.subscribed: dict[str, dict[str, Any]] = {}

    def subscriber(self, topic: str, **options: Any) -> Callable[[Any], Any]:
        self.subscribed[topic] = options
        return lambda handler: handler


async def _noop(conn: Any, envelope: Envelope, event: BookingConfirmed) -> None:
    return None


@pytest.mark.parametrize("linger_ms", [0, 100])
def test_a_linger_lets_the_broker_hold_the_fetch(linger_ms: int) -> None:
    consumer = EventConsumer(
        service="s",
        pool=None,
        producer=None,
        linger_ms=linger_ms,
    )
    consumer.on(BookingConfirmed, _noop)
    broker = _Broker()
    consumer.subscribe(broker)  # type: ignore[arg-type]
    options = broker.subscribed[BookingConfirmed.TOPIC]
    if linger_ms:
        assert options["fetch_max_wait_ms"] == linger_ms
        assert options["fetch_min_bytes"] >= 1 << 20  # so the broker does hold it
    else:
        assert "fetch_max_wait_ms" not in options and "fetch_min_bytes" not in options


def test_read_models_linger_and_the_decisions_do_not() -> None:
    assert MatcherSettings().consumer_linger_ms == 0
    assert RegistrySettings().consumer_linger_ms == 100
    assert AllowanceSettings().consumer_linger_ms == 100
