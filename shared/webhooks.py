"""Standard Webhooks signing and verification (the `standardwebhooks` library).

The library checks the HMAC in constant time and the ±5 minute tolerance, but a malformed
`webhook-signature` raises `ValueError`/`binascii.Error` rather than its own error, and a
replay verifies again (RELIABILITY.md trap 3). `verify` turns every failure into one
`SignatureError` so the caller answers 401, never 500; de-duplicating `webhook-id`s is the
caller's job. Several secrets may be configured at once so the partner can rotate.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime

from standardwebhooks import Webhook, WebhookVerificationError


class SignatureError(Exception):
    """The webhook's signature, timestamp or headers do not verify."""


_REQUIRED = ("webhook-id", "webhook-timestamp", "webhook-signature")


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
    last_error = "no webhook secret configured"
    if not _is_utf8(body):
        # The library decodes the body before it checks the signature, so a signed body
        # that is not UTF-8 would read as a bad signature (401); it is checked over its
        # bytes here, and the caller's parser answers it 400.
        for secret in secrets:
            if _verify_bytes(secret, body, wanted):
                return wanted["webhook-id"]
        raise SignatureError("no matching signature found")
    for secret in secrets:
        try:
            # json_parse=False: parsing is the caller's job (a signed body that is not JSON
            # is a 400, not a signature failure), and parsing twice costs on the hot path.
            _webhook(secret).verify(body, wanted, json_parse=False)
        except WebhookVerificationError as exc:
            last_error = str(exc)
            continue
        except (ValueError, binascii.Error, TypeError) as exc:
            last_error = f"malformed signature header: {exc}"
            continue
        return wanted["webhook-id"]
    raise SignatureError(last_error)


_TOLERANCE_S = 5 * 60  # the library's, both ways


def _is_utf8(body: bytes) -> bool:
    try:
        body.decode()
    except UnicodeDecodeError:
        return False
    return True


def _verify_bytes(secret: str, body: bytes, headers: Mapping[str, str]) -> bool:
    """The library's check (v1 HMAC-SHA256 over `id.timestamp.body`, constant time, ±5
    minutes) over raw bytes."""
    try:
        timestamp = int(headers["webhook-timestamp"])
    except ValueError:
        return False
    if abs(time.time() - timestamp) > _TOLERANCE_S:
        return False
    signed = f"{headers['webhook-id']}.{timestamp}.".encode() + body
    expected = hmac.new(_webhook(secret)._whsecret, signed, hashlib.sha256).digest()
    for part in headers["webhook-signature"].split():
        version, _, value = part.partition(",")
        try:
            given = base64.b64decode(value, validate=True)
        except (ValueError, binascii.Error):
            continue
        if version == "v1" and hmac.compare_digest(given, expected):
            return True
    return False


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
