"""API keys and staff tokens: random, shown once, stored only as a hash, compared in
constant time.

Keys are 256-bit random strings, so a fast hash (SHA-256) is enough: there is nothing to
brute-force that a slow password hash would protect. A key carries a short public prefix
(`fk_live_`) and a lookup id, so a request finds its row by id and compares one hash.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from fastapi import Request

from shared.problems import Problem

KEY_PREFIX = "fk_"
# The partner's API tokens on the matcher's pull API (`pk_<key id>_<secret>`).
PARTNER_KEY_PREFIX = "pk_"


@dataclass(frozen=True)
class IssuedKey:
    key_id: str
    secret: str  # the full key, shown once
    secret_hash: str


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def issue_key(prefix: str = KEY_PREFIX) -> IssuedKey:
    """A new key `fk_<key id>_<secret part>`; store `key_id` and `secret_hash` only."""
    key_id = secrets.token_hex(8)
    secret = f"{prefix}{key_id}_{secrets.token_urlsafe(32)}"
    return IssuedKey(key_id, secret, hash_secret(secret))


def key_id_of(secret: str, prefix: str = KEY_PREFIX) -> str | None:
    """The lookup id inside a presented key, or None if it is not shaped like one."""
    if not secret.startswith(prefix):
        return None
    rest = secret[len(prefix) :]
    key_id, sep, _ = rest.partition("_")
    if not sep or len(key_id) != 16:
        return None
    return key_id


def matches(presented: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(presented), stored_hash)


def bearer(request: Request) -> str:
    """The bearer token of a request, or a 401 problem."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Problem(
            401,
            "unauthorized",
            "send `Authorization: Bearer <key>`",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return token.strip()


def require_token(request: Request, expected: str, role: str) -> None:
    """Check a static staff token (admin, finance) in constant time."""
    token = bearer(request)
    if not expected or not hmac.compare_digest(token.encode(), expected.encode()):
        raise Problem(
            401,
            "unauthorized",
            f"this endpoint needs the {role} token",
            headers={"WWW-Authenticate": "Bearer"},
        )
