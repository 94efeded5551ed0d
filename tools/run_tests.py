"""`make test`: start what the tests need, run every suite, stop what it started.

If the whole local stack is already running (a developer's `make up`), the tests use it and
leave it running; otherwise the stack is started with `APP_ENV=test` (so the shared clock
is controllable) and stopped afterwards, whatever the outcome.
"""

from __future__ import annotations

import os
import subprocess
import sys


def _stack(*args: str, env: dict[str, str] | None = None) -> int:
    return subprocess.call([sys.executable, "-m", "shared.stack", *args], env=env)


def main(argv: list[str]) -> int:
    already_running = _stack("status") == 0
    env = {**os.environ, "APP_ENV": os.environ.get("APP_ENV", "test")}
    if not already_running:
        code = _stack("up", env=env)
        if code != 0:
            print("make test: the local stack did not start (see the message above).")
            return code
    try:
        args = argv or ["-q", "-p", "no:cacheprovider"]
        code = subprocess.call([sys.executable, "-m", "pytest", *args], env=env)
        if code == 5:
            print("make test: pytest collected no tests; that is a failure here.")
            code = 1
        return code
    finally:
        if not already_running:
            _stack("down")


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
