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
_pid = -1


def random_uuid() -> uuid.UUID:
    """A random UUID, like `uuid.uuid4()`."""
    global _buffer, _at, _pid
    if _at + 16 > len(_buffer) or _pid != os.getpid():
        _buffer, _at, _pid = os.urandom(_CHUNK), 0, os.getpid()
    raw = _buffer[_at : _at + 16]
    _at += 16
    return uuid.UUID(bytes=raw, version=4)


def random_hex() -> str:
    """32 random hex digits (a UUID's, without dashes)."""
    return random_uuid().hex
