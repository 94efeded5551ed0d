"""Idempotency-Key rules: what makes two requests under one key the same request."""

from __future__ import annotations

import hashlib
import json


def request_fingerprint(method: str, path: str, body: bytes) -> str:
    """What makes two requests "the same" for an Idempotency-Key: method, path, and the body
    as JSON with sorted keys (so spacing and key order do not matter)."""
    try:
        parsed = json.loads(body) if body else None
        canonical = (
            json.dumps(parsed, sort_keys=True, separators=(",", ":")).encode() if body else b""
        )
    except (ValueError, RecursionError):
        canonical = body
    digest = hashlib.sha256()
    for part in (method.upper().encode(), path.encode(), canonical):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()
