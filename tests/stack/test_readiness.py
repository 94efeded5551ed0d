"""`/readyz` follows its dependencies: 503 with the reason while Kafka is down, 200 again
once it is back, and the service recovers without a restart.

Runs its own Kafka and Postgres (ports distinct from the main stack and from
test_stack.py's), and a service built from the shared wiring in this process.
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from pathlib import Path

import asyncpg
import httpx
import pytest

import devstack as stack
from shared.service import ServiceSpec, create_app
from shared.settings import ServiceSettings
from tests.stack.test_stack import clean_environ, scratch_run_dir

pytestmark = pytest.mark.stack


async def _wait_status(client: httpx.AsyncClient, want: int, timeout_s: float = 30) -> dict:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        response = await client.get("/readyz")
        if response.status_code == want:
            return dict(response.json())
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"/readyz stayed {response.status_code}: {response.text}")
        await asyncio.sleep(0.5)


async def test_readyz_turns_503_when_kafka_stops_and_200_when_it_is_back(
    tmp_path: Path,
) -> None:
    """Start a stack, a service on it; kill -9 Kafka → /readyz 503 naming Kafka; `up` again →
    /readyz 200 (the same process, no restart)."""
    run_dir = scratch_run_dir("readiness") / "run"
    environ = clean_environ(
        run_dir, KAFKA_PORT="19292", KAFKA_CONTROLLER_PORT="19293", POSTGRES_PORT="25632"
    )
    env = await asyncio.to_thread(stack.up, run_dir, False, environ=environ)
    try:
        schema = f"r_{uuid.uuid4().hex[:8]}"
        conn = await asyncpg.connect(env["DATABASE_URL"])
        await conn.execute(f"CREATE SCHEMA {schema}")
        await conn.close()
        migrations = tmp_path / "migrations"
        migrations.mkdir()
        spec = ServiceSpec(name=schema, title="t", description="", migrations_dir=migrations)
        settings = ServiceSettings(
            database_url=env["DATABASE_URL"],
            kafka_bootstrap_servers=env["KAFKA_BOOTSTRAP_SERVERS"],
            kafka_security_protocol=env.get("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT"),
            kafka_sasl_username=env.get("KAFKA_SASL_USERNAME", ""),
            kafka_sasl_password=env.get("KAFKA_SASL_PASSWORD", ""),
            kafka_ssl_cafile=env.get("KAFKA_SSL_CAFILE", ""),
            app_env="test",
        )
        app = create_app(spec, settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
                assert (await client.get("/healthz")).status_code == 200
                await _wait_status(client, 200)
                await asyncio.to_thread(stack.kill9, "kafka", run_dir, environ=environ)
                body = await _wait_status(client, 503)
                assert any("Kafka" in reason for reason in body["reasons"])
                await asyncio.to_thread(stack.up, run_dir, False, environ=environ)
                await _wait_status(client, 200, timeout_s=60)
    finally:
        await asyncio.to_thread(stack.down, run_dir, True, environ=environ)
        shutil.rmtree(run_dir.parent, ignore_errors=True)
