"""How a citizen is shown to facilities: a masked partner id, never the whole of it."""

from __future__ import annotations


def mask_partner_id(partner_user_id: str) -> str:
    """`karrot_user_42` → `kar…42`: enough for staff to tell two people apart on a roster,
    not enough to look the person up in the partner app."""
    if len(partner_user_id) <= 2:
        return "…"
    if len(partner_user_id) <= 6:
        return partner_user_id[0] + "…" + partner_user_id[-1]
    return partner_user_id[:3] + "…" + partner_user_id[-2:]
