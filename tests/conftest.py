"""Fixtures shared by every suite: where the real stack is, and clean places to work in it.

`make test` starts the local stack (real Kafka and Postgres, and the three services) before
pytest and writes its addresses to `.run/stack.env`; tests read that file, and environment
variables of the same names win (so a test run can point at another stack).
"""

from __future__ import annotations

import asyncio
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from shared.kafka import KafkaSecurity
from shared.leader import awaited_frames
from shared.stackenv import client_env

ROOT = Path(__file__).resolve().parents[1]
TASK_DUMP_BEFORE_TIMEOUT_S = 20
_session_loop: asyncio.AbstractEventLoop | None = None


@pytest.fixture(scope="session", autouse=True)
async def _remember_session_loop() -> None:
    """The one event loop every async test runs on (session scope, pyproject.toml)."""
    global _session_loop
    _session_loop = asyncio.get_running_loop()


def _dump_tasks() -> None:
    tasks = asyncio.all_tasks()
    print(f"\n--- {len(tasks)} asyncio tasks, shortly before the timeout ---", file=sys.stderr)
    for task in tasks:
        chain = [
            f"  {f.f_code.co_filename}:{f.f_lineno} in {f.f_code.co_name}"
            for f in awaited_frames(task)
        ]
        print(f"{task!r}", *chain, sep="\n", file=sys.stderr)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """A test that hangs is stopped by pytest-timeout, whose dump shows threads only: the
    event loop waiting in `select`. Shortly before that, print where every asyncio task
    is waiting, so a hang in CI names its await (a sender's stop, a pool's close, ...)."""
    marker = item.get_closest_marker("timeout")
    timeout = float(marker.args[0]) if marker and marker.args else item.config.getini("timeout")
    timer: threading.Timer | None = None
    loop = _session_loop
    if loop is not None and float(timeout or 0) > TASK_DUMP_BEFORE_TIMEOUT_S:
        timer = threading.Timer(
            float(timeout) - TASK_DUMP_BEFORE_TIMEOUT_S,
            lambda: loop.call_soon_threadsafe(_dump_tasks),
        )
        timer.daemon = True
        timer.start()
    try:
        return (yield)
    finally:
        if timer is not None:
            timer.cancel()


@pytest.fixture(scope="session")
def stack_env() -> dict[str, str]:
    env = client_env()
    if "KAFKA_BOOTSTRAP_SERVERS" not in env or "DATABASE_URL" not in env:
        pytest.fail("no local stack: run `make up` (or `make test`, which starts it)")
    return env


@pytest.fixture(scope="session")
def kafka_bootstrap(stack_env: dict[str, str]) -> str:
    return stack_env["KAFKA_BOOTSTRAP_SERVERS"]


@pytest.fixture(scope="session")
def admin_dsn(stack_env: dict[str, str]) -> str:
    return stack_env["DATABASE_URL"]


@pytest.fixture
async def make_schema(admin_dsn: str) -> AsyncIterator[object]:
    """A factory of fresh schemas with the shared tables (outbox, processed_events)."""
    from shared import migrations

    made: list[str] = []
    conn = await asyncpg.connect(admin_dsn)
    empty = ROOT / "tests" / "integration" / "no_migrations"

    async def make() -> str:
        schema = f"t_{uuid.uuid4().hex[:10]}"
        await conn.execute(f'CREATE SCHEMA "{schema}"')
        made.append(schema)
        await migrations.apply(conn, schema, empty)
        return schema

    try:
        yield make
    finally:
        for schema in made:
            await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await conn.close()


@pytest.fixture
async def new_topic(kafka_bootstrap: str, stack_env: dict[str, str]) -> AsyncIterator[object]:
    """A factory of fresh topics (and their DLQs), so tests never see each other's messages."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=kafka_bootstrap, **KafkaSecurity.from_env(stack_env).client_kwargs()
    )
    await admin.start()
    made: list[str] = []

    async def make(partitions: int = 1) -> str:
        name = f"test.{uuid.uuid4().hex[:10]}.v1"
        await admin.create_topics([NewTopic(name, partitions, 1), NewTopic(name + ".dlq", 1, 1)])
        made.extend([name, name + ".dlq"])
        return name

    yield make
    try:
        await admin.delete_topics(made)
    finally:
        await admin.close()
