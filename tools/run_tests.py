"""`make test`: start what the tests need, run every suite, stop what it started.

If the whole local stack is already running (a developer's `make up`), the tests use it and
leave it running. Otherwise a fresh stack is started in its own run dir (`.run/test`, wiped
before and after) with `APP_ENV=test`: the tests move the shared clock forward (it never goes
back), so each `make test` begins from today's date rather than from where the last run
left the clock.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _stack(*args: str, env: dict[str, str] | None = None) -> int:
    return subprocess.call([sys.executable, "-m", "devstack", *args], env=env)


def main(argv: list[str]) -> int:
    env = {**os.environ, "APP_ENV": os.environ.get("APP_ENV", "test")}
    already_running = "RUN_DIR" not in os.environ and _stack("status", env=env) == 0
    if not already_running:
        env.setdefault("RUN_DIR", str(ROOT / ".run" / "test"))
        _stack("down", "--wipe", env=env)
        code = _stack("up", env=env)
        if code != 0:
            print("make test: the local stack did not start (see the message above).")
            _stack("down", env=env)
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
            _stack("down", "--wipe", env=env)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
