"""Bank details sealed by the matcher open only in the allowance (decision 0014): a
roundtrip with the key pair, and every way a blob must refuse to open."""

from __future__ import annotations

import base64

import pytest

from shared.payee_seal import (
    BankDetails,
    Opener,
    SealedDetails,
    Sealer,
    SealKeyError,
    UnsealError,
    new_private_key_spec,
    public_key_spec,
)

DETAILS = BankDetails("011", "302-1234-5678-11", "홍길동")


def _pair() -> tuple[Sealer, Opener]:
    private = new_private_key_spec()
    return Sealer(public_key_spec(private)), Opener(private)


def test_sealed_details_open_with_the_private_key_and_hold_nothing_in_clear() -> None:
    sealer, opener = _pair()
    sealed = sealer.seal("karrot_1", DETAILS)
    assert sealed.key_id == "s1"
    raw = base64.b64decode(sealed.sealed_b64)
    assert b"302" not in raw and "홍길동".encode() not in raw and b"011" not in raw
    assert opener.open("karrot_1", sealed) == DETAILS
    # HPKE: a fresh ephemeral key each time, so one account never gives the same blob twice
    assert sealer.seal("karrot_1", DETAILS).sealed_b64 != sealed.sealed_b64


def test_a_blob_does_not_open_for_another_user_key_or_after_a_change() -> None:
    sealer, opener = _pair()
    sealed = sealer.seal("karrot_1", DETAILS)
    with pytest.raises(UnsealError):
        opener.open("karrot_2", sealed)  # bound to its partner user
    with pytest.raises(UnsealError):
        Opener(new_private_key_spec()).open("karrot_1", sealed)  # another key pair
    with pytest.raises(UnsealError):
        opener.open("karrot_1", SealedDetails("s9", sealed.sealed_b64))  # unknown key id
    raw = bytearray(base64.b64decode(sealed.sealed_b64))
    raw[-1] ^= 1
    with pytest.raises(UnsealError):
        opener.open("karrot_1", SealedDetails("s1", base64.b64encode(raw).decode()))
    with pytest.raises(UnsealError):
        opener.open("karrot_1", SealedDetails("s1", "not base64!"))


def test_rotation_the_opener_holds_old_and_new_private_keys() -> None:
    old, new = new_private_key_spec("s1"), new_private_key_spec("s2")
    sealed_old = Sealer(public_key_spec(old)).seal("u", DETAILS)
    sealed_new = Sealer(public_key_spec(new)).seal("u", DETAILS)
    opener = Opener(f"{new},{old}")
    assert opener.open("u", sealed_old) == opener.open("u", sealed_new) == DETAILS
    assert public_key_spec(f"{new},{old}").startswith("s2:")  # the newest seals


@pytest.mark.parametrize(
    "spec", ["", "s1", "s1:notbase64!", "s1:" + base64.b64encode(b"short").decode(), "bad id:AA=="]
)
def test_malformed_keys_are_refused_at_start(spec: str) -> None:
    with pytest.raises(SealKeyError):
        Sealer(spec)
    with pytest.raises(SealKeyError):
        Opener(spec)
