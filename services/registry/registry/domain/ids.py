"""Ids the registry hands out."""

from __future__ import annotations

import uuid


def new_id(prefix: str) -> str:
    """A Stripe-like prefixed id (`fac_…`, `pst_…`)."""
    return f"{prefix}_{uuid.uuid4().hex[:20]}"
