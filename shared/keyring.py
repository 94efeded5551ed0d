"""Key rings written as settings: `id1:<base64>,id2:<base64>` → {key id: raw key bytes}.

The payee key ring at rest (AES-256-GCM, the allowance) and the seal keys of bank details in
transit (X25519, decision 0014) are written the same way, so they are read by one parser that
names what is wrong with an entry, never printing a key."""

from __future__ import annotations

import base64
import binascii
import re

KEY_ID = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")


def parse_key_ring(
    spec: str, *, label: str, error: type[ValueError], key_bytes: int = 32
) -> dict[str, bytes]:
    """Every `id:<base64>` entry of `spec` (blank entries skipped) as raw bytes of exactly
    `key_bytes`; a malformed id, bad base64, a wrong length or an id given twice raises
    `error` with a sentence that starts with `label` (e.g. "payee key")."""
    keys: dict[str, bytes] = {}
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        key_id, sep, encoded = part.partition(":")
        if not sep or not KEY_ID.match(key_id):
            raise error(f"{label} entry {key_id!r}: write it as <id>:<base64 key>")
        try:
            raw = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise error(f"{label} {key_id}: not base64") from exc
        if len(raw) != key_bytes:
            raise error(f"{label} {key_id}: {len(raw)} bytes, need {key_bytes}")
        if key_id in keys:
            raise error(f"{label} {key_id} given twice")
        keys[key_id] = raw
    return keys
