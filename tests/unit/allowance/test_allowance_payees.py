"""Payee details: AES-GCM sealed, bound to their citizen, keys rotate, output masked."""

from __future__ import annotations

import base64
import os

import pytest
from allowance.payees import (
    PayeeCipher,
    PayeeDecryptError,
    PayeeDetails,
    PayeeKeyError,
    Sealed,
    load_cipher,
    mask_account,
    mask_holder,
    parse_keys,
)

DETAILS = PayeeDetails("004", "123-45-678901", "김광산")


def _key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def test_seal_and_open_round_trip_without_plaintext_in_the_ciphertext() -> None:
    """The sealed bytes do not contain the account number; opening gives it back."""
    cipher = PayeeCipher(parse_keys(f"k1:{_key()}"), "k1")
    sealed = cipher.seal("ctz_a", DETAILS)
    assert b"678901" not in sealed.ciphertext and sealed.key_id == "k1"
    assert cipher.open("ctz_a", sealed) == DETAILS


def test_a_ciphertext_moved_to_another_citizen_does_not_open() -> None:
    """The associated data binds a ciphertext to its citizen."""
    cipher = PayeeCipher(parse_keys(f"k1:{_key()}"), "k1")
    sealed = cipher.seal("ctz_a", DETAILS)
    with pytest.raises(PayeeDecryptError):
        cipher.open("ctz_b", sealed)
    flipped = bytes([sealed.ciphertext[-1] ^ 0xFF])  # always a different byte
    tampered = Sealed(sealed.key_id, sealed.nonce, sealed.ciphertext[:-1] + flipped)
    with pytest.raises(PayeeDecryptError):
        cipher.open("ctz_a", tampered)


def test_keys_rotate_old_rows_still_open() -> None:
    """Sealed under k1, then k2 becomes active: the k1 row opens, new rows use k2."""
    k1, k2 = _key(), _key()
    old = PayeeCipher(parse_keys(f"k1:{k1}"), "k1").seal("ctz_a", DETAILS)
    rotated = PayeeCipher(parse_keys(f"k1:{k1},k2:{k2}"), "k2")
    assert rotated.open("ctz_a", old) == DETAILS
    assert rotated.seal("ctz_a", DETAILS).key_id == "k2"
    with pytest.raises(PayeeDecryptError):
        PayeeCipher(parse_keys(f"k2:{k2}"), "k2").open("ctz_a", old)


def test_production_refuses_to_start_without_a_key() -> None:
    """No key: production refuses; demo and test fall back to the development key."""
    with pytest.raises(PayeeKeyError):
        load_cipher("production", "", "")
    assert load_cipher("demo", "", "").active_key_id == "dev"
    with pytest.raises(PayeeKeyError):
        parse_keys("k1:" + base64.b64encode(b"short").decode())
    with pytest.raises(PayeeKeyError):
        load_cipher("production", f"k1:{_key()},k2:{_key()}", "")


def test_masks_show_only_the_last_four_digits() -> None:
    """Accounts show `***-****-1234`; names keep their first and last letter."""
    assert mask_account("123-45-678901") == "***-****-8901"
    assert mask_holder("김광산") == "김*산"
    assert mask_holder("이수") == "이*"
    assert mask_holder("남궁광산") == "남**산"


def test_without_configured_keys_test_and_demo_seal_under_a_key_of_this_process_only() -> None:
    """The fallback key is random, never one written in the code: what one process sealed
    another cannot open (so a copied database or dump of a demo reveals nothing)."""
    first, second = load_cipher("demo", "", ""), load_cipher("test", "", "")
    sealed = first.seal("ctz_a", DETAILS)
    assert first.open("ctz_a", sealed) == DETAILS
    with pytest.raises(PayeeDecryptError):
        second.open("ctz_a", sealed)
