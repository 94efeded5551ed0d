"""Random (version 4) UUIDs from a buffer of the system's random bytes.

`uuid.uuid4()` makes one `getrandom` system call per id; a decision of a rush batch makes
four ids per application (event, booking, notification, citizen), and those calls were a
visible share of its CPU (issue 20). The bytes come from the same source (`os.urandom`),
read 4 KiB at a time; the buffer is dropped in a forked child so two processes never
hand out the same bytes.
"""

from __future__ import annotations

import os
import uuid

_CHUNK = 4096
_buffer = b""
_at = _CHUNK


def _drop_buffer() -> None:
    global _buffer, _at
    _buffer, _at = b"", _CHUNK


# A forked child must not hand out the bytes its parent will also hand out. (Asking
# `os.getpid()` on every call instead is a system call per id: what the buffer is for.)
os.register_at_fork(after_in_child=_drop_buffer)


def _random16() -> bytes:
    global _buffer, _at
    if _at + 16 > len(_buffer):
        _buffer, _at = os.urandom(_CHUNK), 0
    _at += 16
    return _buffer[_at - 16 : _at]


def random_uuid() -> uuid.UUID:
    """A random UUID, like `uuid.uuid4()`."""
    return uuid.UUID(bytes=_random16(), version=4)


def random_hex() -> str:
    """32 random hex digits: a version-4 UUID's, without dashes (set here on the bytes,
    as `uuid.UUID(..., version=4)` does, without building the UUID)."""
    raw = bytearray(_random16())
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # the RFC 4122 variant
    return raw.hex()
