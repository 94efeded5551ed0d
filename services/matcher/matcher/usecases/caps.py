"""The weekly hour caps: the allowance owns the cap table and announces each version as
CapsChanged (allowance.policy.v1); the matcher holds a copy in `week_caps` and enforces it
(decision 0011). It has no cap of its own."""

from __future__ import annotations

import logging

from matcher import store
from matcher.usecases.deps import Deps
from shared.db import Connection
from shared.events import CapsChanged

log = logging.getLogger(__name__)


async def adopt_caps(conn: Connection, deps: Deps, event: CapsChanged) -> bool:
    """Hold the weekly hours of the allowance's cap table `event` announces; True if it was
    adopted. An older version than the one held (a replay, a late duplicate) changes
    nothing. Decisions taken before stay as they were: a lower cap refuses later bookings,
    it cancels none."""
    adopted = await store.replace_week_caps(conn, event.caps_version, event.caps, deps.now())
    if adopted:
        log.info("weekly caps of version %d adopted", event.caps_version)
    else:
        log.info("weekly caps version %d is not newer; ignored", event.caps_version)
    return adopted
