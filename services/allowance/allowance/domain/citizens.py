"""Which references are citizen ids: the matcher's pseudonymous `ctz_…` ids, the one id a
citizen has on statements, payout lines and the finance console (issue 16)."""

from __future__ import annotations

import re

# The matcher makes `ctz_` + 20 lowercase hex digits; up to 40 leaves room for a longer
# form without admitting a partner's user id (`karrot_ux_0001`) or anything with case.
CITIZEN_ID_PATTERN = r"^ctz_[a-z0-9]{1,40}$"
_CITIZEN_ID = re.compile(CITIZEN_ID_PATTERN)


def is_citizen_id(ref: str) -> bool:
    return _CITIZEN_ID.fullmatch(ref) is not None
