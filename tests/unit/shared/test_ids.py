"""Buffered random UUIDs (shared/ids.py): version-4 UUIDs, none repeated across many
buffers, and a forked child never hands out its parent's buffered bytes."""

from __future__ import annotations

import os
import uuid

from shared import ids


def test_random_uuids_are_version_4_and_distinct_across_buffers() -> None:
    made = [ids.random_uuid() for _ in range(5_000)]  # ~20 buffers of 256
    assert all(u.version == 4 and u.variant == uuid.RFC_4122 for u in made)
    assert len(set(made)) == len(made)
    assert len(ids.random_hex()) == 32


def test_a_forked_child_draws_fresh_bytes() -> None:
    ids.random_uuid()  # the parent's buffer holds unused bytes now
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next id, exit at once
        os.write(write, ids.random_uuid().bytes)
        os._exit(0)
    os.waitpid(pid, 0)
    child = uuid.UUID(bytes=os.read(read, 16))
    assert child != ids.random_uuid()


def test_random_hex_is_a_version_4_uuid_without_dashes() -> None:
    for _ in range(2_000):
        made = uuid.UUID(hex=ids.random_hex())
        assert made.version == 4 and made.variant == uuid.RFC_4122


def test_random_hex_sets_the_same_bits_as_uuid() -> None:
    for raw in (b"\x00" * 16, b"\xff" * 16, bytes(range(16))):
        ids._buffer, ids._at = raw, 0
        expected = uuid.UUID(bytes=raw, version=4).hex
        assert ids.random_hex() == expected
