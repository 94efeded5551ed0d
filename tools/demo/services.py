"""What the demo (and the end-to-end tests) need running: the stack and the partner
simulator on the port the matcher notifies, each started only if it is not running."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from shared.stackenv import client_env

ROOT = Path(__file__).resolve().parents[2]
SIM_START_S_MAX = 20.0


class SimulatorError(RuntimeError):
    """The partner simulator did not start."""


def read_stack_env() -> dict[str, str]:
    """`.run/stack.env` (or `$RUN_DIR/stack.env`), overlaid by addresses and secrets set in
    the environment."""
    return client_env()


def ensure_stack() -> bool:
    """Start whatever is not running; True if nothing was running (so we stop it after)."""
    import devstack as stack

    states = stack.status()
    was_running = [s for s in states if s.state in ("running", "external")]
    if len(was_running) == len(states):
        return False
    print("starting the local stack (Kafka, Postgres, registry, matcher, allowance)…", flush=True)
    environ = {**os.environ, "APP_ENV": os.environ.get("APP_ENV", "demo")}
    stack.up(environ=environ, say=lambda line: print(f"  {line}", flush=True))
    return not was_running


def sim_url_of(env: dict[str, str]) -> str:
    notify = urlsplit(env.get("PARTNER_NOTIFY_URL", "http://127.0.0.1:8009/notifications"))
    return f"{notify.scheme}://{notify.hostname}:{notify.port}"


def sim_answers(url: str) -> bool:
    try:
        r = httpx.get(url + "/healthz", timeout=1)
    except httpx.HTTPError:
        return False
    return r.status_code == 200 and r.json().get("service") == "partner_sim"


@contextlib.contextmanager
def simulator(env: dict[str, str]) -> Iterator[str]:
    """The partner simulator where the matcher sends notifications: ours if none runs."""
    url = sim_url_of(env)
    if sim_answers(url):
        yield url
        return
    port = urlsplit(url).port or 8009
    proc = subprocess.Popen(
        [sys.executable, "-m", "tools.partner_sim", "--port", str(port)],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + SIM_START_S_MAX
        while not sim_answers(url):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SimulatorError("the partner simulator did not start")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
