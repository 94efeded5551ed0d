"""Reading `<run dir>/stack.env`: where the local stack's clients find its addresses.

The dev-only launcher (`python -m devstack up`) writes the file; tests, the CLI, the demo,
the simulator and the bench read it. The reading side lives here, in the runtime package,
because those clients (the `gwangsan` CLI among them) also run where the launcher is not
installed, pointed at a system by environment variables alone.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from shared.provision import SERVICES

ROOT_DIR = Path(__file__).resolve().parent.parent

# Every key the launcher writes, in the order it writes them.
KEYS: tuple[str, ...] = (
    "KAFKA_BOOTSTRAP_SERVERS",
    # Kafka security: the protocol and the CA for every client; the SASL user and password
    # are the admin's (tests, tools); each service gets its own user and only its own
    # `<SERVICE>_KAFKA_PASSWORD` from the launcher.
    "KAFKA_SECURITY_PROTOCOL",
    "KAFKA_SASL_MECHANISM",
    "KAFKA_SSL_CAFILE",
    "KAFKA_SASL_USERNAME",
    "KAFKA_SASL_PASSWORD",
    *(f"{name.upper()}_KAFKA_PASSWORD" for name in SERVICES),
    "DATABASE_URL",
    *(f"{name.upper()}_DATABASE_URL" for name in SERVICES),
    *(f"{name.upper()}_URL" for name in SERVICES),
    "ADMIN_TOKEN",
    "FINANCE_TOKEN",
    "PARTNER_WEBHOOK_SECRET",
    "PARTNER_NOTIFY_URL",
    "PARTNER_NOTIFY_SECRET",
    # the partner's token for the matcher's pull API (the matcher stores only its hash)
    "PARTNER_API_TOKEN",
    "ALLOWANCE_PAYEE_KEYS",
    # Bank details from the partner are sealed by the matcher to the allowance's key pair
    # (decision 0014): the private keys are the allowance's alone, the public key the
    # matcher's.
    "ALLOWANCE_PAYEE_SEAL_KEYS",
    "PAYEE_SEAL_PUBLIC_KEY",
    "APP_ENV",
)


def default_run_dir(environ: Mapping[str, str] | None = None) -> Path:
    """`RUN_DIR` if set, else `<repo>/.run` (git-ignored)."""
    env = os.environ if environ is None else environ
    value = env.get("RUN_DIR")
    return Path(value).expanduser().resolve() if value else ROOT_DIR / ".run"


def read_env_file(path: Path) -> dict[str, str]:
    """Parse `KEY=value` lines; blank lines and `#` comments are skipped."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    values: dict[str, str] = {}
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        key, sep, value = stripped.partition("=")
        if sep:
            values[key.strip()] = value.strip()
    return values


def load_stack_env(run_dir: Path | str | None = None) -> dict[str, str]:
    """The values of a running (or last started) stack, for tests and tools.

    `run_dir` defaults to `RUN_DIR` or `<repo>/.run`.
    """
    directory = Path(run_dir) if run_dir else default_run_dir()
    path = directory / "stack.env"
    if not path.exists():
        raise FileNotFoundError(f"No {path}; start the stack with `python -m devstack up`.")
    return read_env_file(path)


def client_env(run_dir: Path | str | None = None) -> dict[str, str]:
    """What a client of the stack (tests, CLI, demo, simulator) should use: the stack's
    `stack.env` if there is one, with any of its variables set in the environment winning,
    so a tool can be pointed at another stack without editing files."""
    directory = Path(run_dir) if run_dir else default_run_dir()
    path = directory / "stack.env"
    values = read_env_file(path) if path.exists() else {}
    for key in {*KEYS, *values}:
        if os.environ.get(key):
            values[key] = os.environ[key]
    return values
