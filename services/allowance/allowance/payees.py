"""Payee bank details: sealed with AES-256-GCM, shown only masked (BRIEF §8, Korean PIPA).

Keys come from configuration as `ALLOWANCE_PAYEE_KEYS=k1:<base64 32 bytes>,k2:<...>` with
`ALLOWANCE_PAYEE_ACTIVE_KEY_ID` naming the one new writes use. Each stored row keeps the id
of the key that sealed it, so keys rotate without re-encrypting at once: an old row opens
with its own key. The associated data binds a ciphertext to its citizen and key id, so a
ciphertext copied onto another citizen's row does not open.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
from dataclasses import dataclass

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shared.keyring import parse_key_ring

log = logging.getLogger(__name__)

KEY_BYTES = 32
NONCE_BYTES = 12
DEV_KEY_ID = "dev"


class PayeeKeyError(ValueError):
    """The payee key configuration is missing or malformed."""


class PayeeDecryptError(RuntimeError):
    """A stored payee does not open with its key (tampered, or the key is missing)."""


@dataclass(frozen=True)
class PayeeDetails:
    """What the bank needs: bank code (3 digits), account number, account holder."""

    bank_code: str
    account_number: str
    account_holder: str


@dataclass(frozen=True)
class Sealed:
    key_id: str
    nonce: bytes
    ciphertext: bytes


@dataclass(frozen=True)
class BankLine:
    """One line of the bank bulk-transfer file, with the full (opened) account details."""

    bank_code: str
    account_number: str
    account_holder: str
    amount_won: int
    memo: str


def parse_keys(spec: str) -> dict[str, bytes]:
    """`k1:<base64>,k2:<base64>` → {key id: 32-byte key}."""
    return parse_key_ring(spec, label="payee key", error=PayeeKeyError, key_bytes=KEY_BYTES)


def _aad(citizen_id: str, key_id: str) -> bytes:
    return f"gwangsan-payee:{citizen_id}:{key_id}".encode()


class PayeeCipher:
    def __init__(self, keys: dict[str, bytes], active_key_id: str) -> None:
        if active_key_id not in keys:
            raise PayeeKeyError(f"the active payee key {active_key_id!r} is not configured")
        self._keys = {kid: AESGCM(key) for kid, key in keys.items()}
        self.active_key_id = active_key_id

    def seal(self, citizen_id: str, details: PayeeDetails) -> Sealed:
        nonce = os.urandom(NONCE_BYTES)
        plaintext = orjson.dumps(
            {
                "bank_code": details.bank_code,
                "account_number": details.account_number,
                "account_holder": details.account_holder,
            }
        )
        ciphertext = self._keys[self.active_key_id].encrypt(
            nonce, plaintext, _aad(citizen_id, self.active_key_id)
        )
        return Sealed(self.active_key_id, nonce, ciphertext)

    def open(self, citizen_id: str, sealed: Sealed) -> PayeeDetails:
        aead = self._keys.get(sealed.key_id)
        if aead is None:
            raise PayeeDecryptError(f"payee key {sealed.key_id} is not configured")
        try:
            plaintext = aead.decrypt(
                sealed.nonce, sealed.ciphertext, _aad(citizen_id, sealed.key_id)
            )
        except InvalidTag as exc:
            raise PayeeDecryptError(f"payee of {citizen_id} does not open") from exc
        data = orjson.loads(plaintext)
        return PayeeDetails(
            str(data["bank_code"]), str(data["account_number"]), str(data["account_holder"])
        )


def load_cipher(app_env: str, keys_spec: str, active_key_id: str) -> PayeeCipher:
    """The cipher from configuration. Production without keys is refused; test and demo
    without keys get a random key of this process alone, with a warning — never a key
    written in the code (the local stack gives every stack its own in stack.env)."""
    keys = parse_keys(keys_spec)
    if not keys:
        if app_env == "production":
            raise PayeeKeyError(
                "ALLOWANCE_PAYEE_KEYS is not set: production refuses to store bank details"
                " without an encryption key (k1:<base64 of 32 random bytes>)"
            )
        log.warning(
            "no ALLOWANCE_PAYEE_KEYS configured: bank details are sealed with a random key"
            " of this process and cannot be opened after a restart"
        )
        return PayeeCipher({DEV_KEY_ID: secrets.token_bytes(KEY_BYTES)}, DEV_KEY_ID)
    if not active_key_id:
        if len(keys) != 1:
            raise PayeeKeyError("several payee keys: set ALLOWANCE_PAYEE_ACTIVE_KEY_ID")
        active_key_id = next(iter(keys))
    return PayeeCipher(keys, active_key_id)


def mask_account(account_number: str) -> str:
    """`***-****-1234`: only the last four digits are ever shown."""
    digits = re.sub(r"\D", "", account_number)
    return f"***-****-{digits[-4:]}"


def mask_holder(name: str) -> str:
    """`김*수`, `이*`: first (and last, for three or more letters) character only."""
    name = name.strip()
    if len(name) <= 1:
        return "*"
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]
