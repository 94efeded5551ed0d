"""The one error type the launcher raises on purpose.

Everything a developer can fix themselves (no JDK, a port in use, a full disk, a component
that did not come up) becomes a `StackError` with one sentence saying what to do, so the CLI
can print it without a stack trace and exit 2.
"""

from __future__ import annotations

import errno
from pathlib import Path


class StackError(Exception):
    """A failure the developer can act on; `details` is extra context (a log tail)."""

    def __init__(self, message: str, details: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.details = details


def os_error_to_stack_error(exc: OSError, path: Path | str | None = None) -> StackError:
    """Turn a filesystem error into a sentence about the disk, not a traceback."""
    where = str(path or exc.filename or "the run directory")
    if exc.errno == errno.ENOSPC:
        return StackError(f"The disk is full: could not write {where}; free some space.")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return StackError(
            f"{where} is not writable ({exc.strerror}); set RUN_DIR to a writable directory."
        )
    if path or exc.filename:
        return StackError(
            f"Could not use {where} ({exc.strerror or exc}); set RUN_DIR to a writable directory."
        )
    return StackError(f"The operating system refused: {exc.strerror or exc}.")
