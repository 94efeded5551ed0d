"""Where the stack lives and which ports it uses, resolved once from the environment.

Every module of the launcher takes a `StackConfig` instead of reading `os.environ` itself,
so tests can run a second, independent stack (own run dir, own ports) in the same process
as the main one without touching the process environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from devstack.errors import StackError

# Re-exported: the launcher and its tests take every name of the stack's layout from here.
from shared.provision import DATABASE_NAME as DATABASE_NAME
from shared.provision import SERVICES as SERVICES
from shared.stackenv import ROOT_DIR as ROOT_DIR
from shared.stackenv import default_run_dir as default_run_dir
from shared.topics import partitions_from

STACK_DIR = Path(__file__).resolve().parent

SERVICE_PORTS_DEFAULT: dict[str, int] = {"registry": 8001, "matcher": 8002, "allowance": 8003}
COMPONENTS: tuple[str, ...] = ("kafka", "postgres", *SERVICES)

KAFKA_PORT_DEFAULT = 9092
POSTGRES_PORT_DEFAULT = 55432
LOCALHOST = "127.0.0.1"


def _port(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        port = int(raw)
    except ValueError:
        raise StackError(f"{name}={raw!r} is not a port number; set it to 1-65535.") from None
    if not 1 <= port <= 65535:
        raise StackError(f"{name}={port} is out of range; set it to 1-65535.")
    return port


@dataclass(frozen=True)
class StackConfig:
    """Paths and ports of one stack instance (one run dir)."""

    run_dir: Path
    environ: Mapping[str, str]
    kafka_port: int
    kafka_controller_port: int
    postgres_port: int
    service_ports: Mapping[str, int]
    # KAFKA_PARTITIONS: the partitions of every source topic the launcher creates.
    kafka_partitions: int

    @classmethod
    def from_environ(
        cls, run_dir: Path | str | None = None, environ: Mapping[str, str] | None = None
    ) -> StackConfig:
        """Resolve paths and ports; `environ` defaults to the process environment."""
        env: Mapping[str, str] = dict(os.environ if environ is None else environ)
        resolved = Path(run_dir).expanduser().resolve() if run_dir else default_run_dir(env)
        kafka_port = _port(env, "KAFKA_PORT", KAFKA_PORT_DEFAULT)
        try:
            kafka_partitions = partitions_from(env)
        except ValueError as exc:
            raise StackError(f"{exc} Set it to the partitions every topic should have.") from None
        return cls(
            run_dir=resolved,
            environ=env,
            kafka_port=kafka_port,
            kafka_controller_port=_port(env, "KAFKA_CONTROLLER_PORT", kafka_port + 1),
            postgres_port=_port(env, "POSTGRES_PORT", POSTGRES_PORT_DEFAULT),
            service_ports={
                name: _port(env, f"{name.upper()}_PORT", port)
                for name, port in SERVICE_PORTS_DEFAULT.items()
            },
            kafka_partitions=kafka_partitions,
        )

    # Layout of the run dir. Everything the stack writes lives below it, except the jar
    # cache, which every run dir shares because fetching it is the slowest step.
    @property
    def cache_dir(self) -> Path:
        return ROOT_DIR / ".cache" / "kafka"

    @property
    def libs_dir(self) -> Path:
        return self.cache_dir / "libs"

    @property
    def logs_dir(self) -> Path:
        return self.run_dir / "logs"

    @property
    def pids_dir(self) -> Path:
        return self.run_dir / "pids"

    @property
    def kafka_dir(self) -> Path:
        return self.run_dir / "kafka"

    @property
    def postgres_dir(self) -> Path:
        return self.run_dir / "postgres"

    @property
    def env_file(self) -> Path:
        return self.run_dir / "stack.env"

    @property
    def state_file(self) -> Path:
        return self.run_dir / "stack.json"

    @property
    def lock_file(self) -> Path:
        return self.run_dir / ".stack.lock"

    def log_file(self, component: str) -> Path:
        return self.logs_dir / f"{component}.log"

    def pid_file(self, component: str) -> Path:
        return self.pids_dir / f"{component}.pid"
