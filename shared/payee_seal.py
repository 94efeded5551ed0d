"""Bank details sealed to the allowance: the matcher seals, only the allowance opens.

The partner sends a citizen's bank details to the matcher's webhook, but only the
allowance may read them (docs/decisions/0014). The matcher seals them at ingest with HPKE
(RFC 9180, base mode: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM, from the
pinned `cryptography` package) to the allowance's public key, so the topic, the matcher's
outbox and every log hold only ciphertext. The allowance's private key is its own secret
(`ALLOWANCE_PAYEE_SEAL_KEYS=s1:<base64 of 32 bytes>,...`); the matcher holds the public
key alone (`PAYEE_SEAL_PUBLIC_KEY=s1:<base64 of 32 bytes>`) and so cannot open what it
sealed. The key id travels with the blob, so the allowance rotates its key pair by adding
the new private key before the matcher switches to the new public key. The HPKE `info`
binds a blob to its partner user: copied onto another user's event, it does not open.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from shared.keyring import parse_key_ring

KEY_BYTES = 32
_SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)


class SealKeyError(ValueError):
    """A seal key setting is missing or malformed."""


class UnsealError(ValueError):
    """Sealed details that do not open: another key, another partner user, or altered."""


@dataclass(frozen=True)
class BankDetails:
    """What the partner sent, as sent (checking them is the allowance's: domain/banks.py)."""

    bank_code: str
    account_number: str
    account_holder: str


@dataclass(frozen=True)
class SealedDetails:
    key_id: str
    sealed_b64: str


def _info(partner_user_id: str) -> bytes:
    return b"gwangsan payee details v1\x00" + partner_user_id.encode()


def _parse(spec: str) -> dict[str, bytes]:
    """`s1:<base64>,s2:<base64>` → {key id: 32 raw bytes}."""
    return parse_key_ring(spec, label="seal key", error=SealKeyError, key_bytes=KEY_BYTES)


def new_private_key_spec(key_id: str = "s1") -> str:
    """A fresh private key as `ALLOWANCE_PAYEE_SEAL_KEYS` takes it (the local stack's)."""
    raw = X25519PrivateKey.generate().private_bytes_raw()
    return f"{key_id}:{base64.b64encode(raw).decode()}"


def public_key_spec(private_spec: str) -> str:
    """The public key of the first (newest) private key, as `PAYEE_SEAL_PUBLIC_KEY`."""
    keys = _parse(private_spec)
    if not keys:
        raise SealKeyError("no seal private key given")
    key_id, raw = next(iter(keys.items()))
    public = X25519PrivateKey.from_private_bytes(raw).public_key().public_bytes_raw()
    return f"{key_id}:{base64.b64encode(public).decode()}"


class Sealer:
    """The matcher's side: seals to one public key."""

    def __init__(self, public_spec: str) -> None:
        keys = _parse(public_spec)
        if len(keys) != 1:
            raise SealKeyError("PAYEE_SEAL_PUBLIC_KEY names exactly one key: <id>:<base64>")
        self.key_id, raw = next(iter(keys.items()))
        self._public = X25519PublicKey.from_public_bytes(raw)

    def seal(self, partner_user_id: str, details: BankDetails) -> SealedDetails:
        plaintext = orjson.dumps(
            {
                "bank_code": details.bank_code,
                "account_number": details.account_number,
                "account_holder": details.account_holder,
            }
        )
        sealed = _SUITE.encrypt(plaintext, self._public, info=_info(partner_user_id))
        return SealedDetails(self.key_id, base64.b64encode(sealed).decode())


class Opener:
    """The allowance's side: opens with the private key the blob names."""

    def __init__(self, private_spec: str) -> None:
        keys = _parse(private_spec)
        if not keys:
            raise SealKeyError("ALLOWANCE_PAYEE_SEAL_KEYS is empty")
        self._keys = {kid: X25519PrivateKey.from_private_bytes(raw) for kid, raw in keys.items()}

    def open(self, partner_user_id: str, sealed: SealedDetails) -> BankDetails:
        key = self._keys.get(sealed.key_id)
        if key is None:
            raise UnsealError(f"no seal private key {sealed.key_id!r}")
        try:
            blob = base64.b64decode(sealed.sealed_b64, validate=True)
            data = orjson.loads(_SUITE.decrypt(blob, key, info=_info(partner_user_id)))
            return BankDetails(
                str(data["bank_code"]), str(data["account_number"]), str(data["account_holder"])
            )
        except (InvalidTag, binascii.Error, ValueError, KeyError, TypeError) as exc:
            raise UnsealError(f"sealed details do not open: {type(exc).__name__}") from None
