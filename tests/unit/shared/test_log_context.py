"""Log context: a request's or an event's ids are on every line logged inside it, and only
there — what was bound before is back afterwards, also after an error."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import structlog

from shared.events import Envelope
from shared.logs import bind_event, bind_request


def _context() -> dict[str, object]:
    return structlog.contextvars.get_contextvars()


def test_a_request_binding_nests_and_restores_what_was_bound_before() -> None:
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(service="matcher")
    with bind_request("req-outer"):
        assert _context() == {"service": "matcher", "request_id": "req-outer"}
        with bind_request("req-inner"):
            assert _context()["request_id"] == "req-inner"
        assert _context()["request_id"] == "req-outer"
    assert _context() == {"service": "matcher"}


def test_a_binding_is_undone_when_the_block_raises() -> None:
    structlog.contextvars.clear_contextvars()
    with pytest.raises(RuntimeError), bind_request("req-1"):
        raise RuntimeError("boom")
    assert "request_id" not in _context()


def test_an_event_binding_carries_its_id_type_and_key() -> None:
    structlog.contextvars.clear_contextvars()
    envelope = Envelope.model_validate(
        {
            "event_id": uuid.uuid4(),
            "type": "application.submitted",
            "version": 1,
            "key": "pst_1",
            "occurred_at": "2026-12-07T00:00:00+00:00",
            "producer": "matcher",
            "data": {},
        }
    )
    with bind_event(envelope):
        got = _context()
        assert got["event_id"] == str(envelope.event_id)
        assert (got["event_type"], got["event_key"]) == ("application.submitted", "pst_1")
    assert _context() == {}


async def test_concurrent_requests_each_see_their_own_id() -> None:
    structlog.contextvars.clear_contextvars()
    seen: dict[str, object] = {}

    async def serve(request_id: str) -> None:
        with bind_request(request_id):
            await asyncio.sleep(0.01)
            seen[request_id] = _context()["request_id"]

    await asyncio.gather(*(serve(f"req-{i}") for i in range(5)))
    assert seen == {f"req-{i}": f"req-{i}" for i in range(5)}
