"""Standard Webhooks signing and verification.

Signing is the `standardwebhooks` library's. Verification is the same check written over
the body's bytes: v1 = base64(HMAC-SHA256(secret, "{id}.{floor(timestamp)}.{body}")),
compared in constant time with each `v1,` signature of the header, the timestamp within
±5 minutes. The library's `verify` decodes the body to text first (a signed body that is
not UTF-8 would read as a bad signature, and is a 400 for the caller's parser to give), and
re-derives the timestamp through `datetime` and the signature through `sign` and base64 on
every request: ~18 µs, about a tenth of the webhook's own work in process (issue 20's
`bench.hot_path`); this takes less than half. `tests/unit/shared/test_webhook_verify.py`
holds it to the library's answer on every case, in both directions (decision 0018).

A replay verifies again (RELIABILITY.md trap 3): de-duplicating `webhook-id`s is the
caller's job. Every failure is one `SignatureError`, so the caller answers 401, never 500.
Several secrets may be configured at once so the partner can rotate.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hmac
import math
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime

from standardwebhooks import Webhook


class SignatureError(Exception):
    """The webhook's signature, timestamp or headers do not verify."""


_REQUIRED = ("webhook-id", "webhook-timestamp", "webhook-signature")
_TOLERANCE_S = 5 * 60  # the library's, both ways


@functools.lru_cache(maxsize=16)
def _webhook(secret: str) -> Webhook:
    """One `Webhook` per secret: building one decodes the secret, on every request otherwise."""
    return Webhook(secret)


def verify(body: bytes, headers: Mapping[str, str], secrets: Sequence[str]) -> str:
    """Verify `body` against any of `secrets`; returns the `webhook-id`."""
    wanted = {h: headers.get(h, "") for h in _REQUIRED}
    if not all(wanted.values()):
        # A server hands the names lower-cased (ASGI does); a caller's own mapping may not.
        lowered = {k.lower(): v for k, v in headers.items()}
        wanted = {h: lowered.get(h, "") for h in _REQUIRED}
        missing = [h for h, v in wanted.items() if not v]
        if missing:
            raise SignatureError(f"missing header(s): {', '.join(missing)}")
    msg_id = wanted["webhook-id"]
    try:
        sent_at = float(wanted["webhook-timestamp"])
        timestamp = math.floor(sent_at)
    except (ValueError, OverflowError):
        raise SignatureError("the webhook-timestamp is not a number of seconds") from None
    skew = time.time() - sent_at
    if skew > _TOLERANCE_S:
        raise SignatureError("message timestamp too old")
    if skew < -_TOLERANCE_S:
        raise SignatureError("message timestamp too new")
    if not secrets:
        raise SignatureError("no webhook secret configured")
    signed = f"{msg_id}.{timestamp}.".encode() + body
    expected = [hmac.digest(_webhook(secret)._whsecret, signed, "sha256") for secret in secrets]
    # Pair by pair, as the library reads them: a malformed pair before a matching one
    # fails the header, one after it is never read.
    for part in wanted["webhook-signature"].split(" "):
        version, value = _pair(part)
        if version != "v1":
            continue
        try:
            given = base64.b64decode(value)
        except (ValueError, binascii.Error):
            raise SignatureError("malformed signature header: not base64") from None
        if any(hmac.compare_digest(e, given) for e in expected):
            return msg_id
    raise SignatureError("no matching signature found")


def _pair(part: str) -> tuple[str, str]:
    """`version,signature`, or the header is malformed."""
    pieces = part.split(",")
    if len(pieces) != 2:
        raise SignatureError("malformed signature header: expected `version,signature`")
    return pieces[0], pieces[1]


def sign(secret: str, msg_id: str, timestamp: datetime, body: bytes) -> dict[str, str]:
    """The three headers for `body`, signed with `secret`."""
    signature = _webhook(secret).sign(msg_id, timestamp, body.decode())
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
    }


def new_message_id() -> str:
    return f"msg_{uuid.uuid4().hex}"
