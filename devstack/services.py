"""The three services as detached local processes (`python -m <name>`).

Each gets the stack's environment plus its own role's `DATABASE_URL`, so a service can only
ever reach its own schema. A service whose module does not exist yet is skipped rather than
failing the whole stack, so the launcher is usable while the services are being written.
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from devstack import procs
from devstack.config import LOCALHOST, ROOT_DIR, SERVICES, StackConfig
from devstack.errors import StackError, os_error_to_stack_error

READY_TIMEOUT_S = 60.0
LOG_TAIL_LINES = 30
# Set in each service's environment: tells this run dir's services apart from another run
# dir's (and from an unrelated process that reused a pid).
RUN_DIR_MARKER = "GWANGSAN_STACK_RUN_DIR"


def installed(name: str) -> bool:
    """True if `python -m <name>` would run, checked without importing the package."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return False
    if spec is None or not spec.submodule_search_locations:
        return False
    return any(
        (Path(location) / "__main__.py").exists() for location in spec.submodule_search_locations
    )


def _is_our_service(config: StackConfig, name: str, pid: int) -> bool:
    args = procs.cmdline(pid)
    if "-m" not in args or name not in args:
        return False
    return procs.environ_of(pid).get(RUN_DIR_MARKER) == str(config.run_dir)


def running_pid(config: StackConfig, name: str) -> int | None:
    pid = procs.read_pid_file(config.pid_file(name))
    if pid is not None and procs.alive(pid) and _is_our_service(config, name, pid):
        return pid
    return None


def check_port(config: StackConfig, name: str) -> None:
    procs.require_free_port(config.service_ports[name], f"{name.upper()}_PORT", name)


def start(config: StackConfig, name: str, stack_env: Mapping[str, str]) -> int:
    """Start one service detached with its own role's database URL."""
    env = dict(config.environ)
    env.update(stack_env)
    # Each service is its own Kafka user and gets no other user's password (not the
    # admin's, which the stack.env default KAFKA_SASL_* would otherwise be).
    for other in SERVICES:
        env.pop(f"{other.upper()}_KAFKA_PASSWORD", None)
        if other != name:  # nor another role's Postgres password
            env.pop(f"{other.upper()}_DATABASE_URL", None)
    if name != "allowance":  # the payee keys and the finance token are the allowance's alone
        env.pop("ALLOWANCE_PAYEE_KEYS", None)
        env.pop("ALLOWANCE_PAYEE_SEAL_KEYS", None)
        env.pop("FINANCE_TOKEN", None)
    if name != "matcher":  # the partner's API token is the matcher's alone
        env.pop("PARTNER_API_TOKEN", None)
    if name != "matcher":  # only the matcher seals bank details (decision 0014)
        env.pop("PAYEE_SEAL_PUBLIC_KEY", None)
    env.update(
        {
            "KAFKA_SASL_USERNAME": name,
            "KAFKA_SASL_PASSWORD": stack_env.get(f"{name.upper()}_KAFKA_PASSWORD", ""),
        }
    )
    env.update(
        {
            "DATABASE_URL": stack_env[f"{name.upper()}_DATABASE_URL"],
            "PORT": str(config.service_ports[name]),
            "SERVICE_NAME": name,
            "APP_ENV": stack_env.get("APP_ENV", "demo"),
            "PYTHONUNBUFFERED": "1",
            RUN_DIR_MARKER: str(config.run_dir),
        }
    )
    # `<NAME>_ROLE` (e.g. MATCHER_ROLE=api) sets one service's `ROLE`, not the others'.
    env["ROLE"] = env.get(f"{name.upper()}_ROLE", "all")
    log_path = config.log_file(name)
    try:
        with log_path.open("a") as log:
            log.write(f"--- starting {name} at {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
    except OSError as exc:
        raise os_error_to_stack_error(exc, log_path) from None
    pid = procs.spawn_detached([sys.executable, "-m", name], log_path, env, ROOT_DIR)
    procs.write_pid_file(config.pid_file(name), pid)
    return pid


def _ready_once(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status) == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


async def wait_ready(config: StackConfig, name: str, pid: int) -> None:
    """Ready means `GET /readyz` answers 200; on failure the log's tail says why."""
    url = f"http://{LOCALHOST}:{config.service_ports[name]}/readyz"
    log_path = config.log_file(name)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        if not procs.alive(pid):
            raise StackError(
                f"{name} exited while starting; see {log_path}.",
                procs.tail(log_path, LOG_TAIL_LINES),
            )
        if await asyncio.to_thread(_ready_once, url):
            return
        if time.monotonic() >= deadline:
            raise StackError(
                f"{name} did not answer 200 on {url} within {READY_TIMEOUT_S:.0f} s; "
                f"see {log_path}.",
                procs.tail(log_path, LOG_TAIL_LINES),
            )
        await asyncio.sleep(0.2)


def stop(config: StackConfig, name: str) -> bool:
    pid = running_pid(config, name)
    if pid is not None:
        procs.terminate(pid)
    procs.remove_file(config.pid_file(name))
    return pid is not None


def kill9(config: StackConfig, name: str) -> None:
    """SIGKILL the service and return once its port can be bound again, so a crash test can
    restart it at once."""
    pid = running_pid(config, name)
    if pid is not None:
        procs.kill9(pid)
        procs.wait_port_free(config.service_ports[name], timeout_s=10.0)
