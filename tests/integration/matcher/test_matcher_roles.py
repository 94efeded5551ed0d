"""The matcher split into an API process and a decision worker (ROLE, decision 0008), as
real processes beside the stack's own matcher: the API process takes webhooks and never
joins a consumer group; the worker consumes and serves no API."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from shared import topics
from shared.kafka import stack_client_kwargs
from tools.partner_sim import client

from .conftest import ROOT
from .helpers import BookingsWatcher, Matcher, publish_posting

pytestmark = pytest.mark.stack

APPLICATIONS_GROUP = f"matcher.{topics.MATCHER_APPLICATIONS}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def spawn(stack_env: dict[str, str]) -> Iterator[object]:
    """Start `python -m matcher` in a role on a free port; stopped after the test."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(role: str) -> str:
        port = _free_port()
        env = {
            **os.environ,
            **stack_env,
            "DATABASE_URL": stack_env["MATCHER_DATABASE_URL"],
            "PORT": str(port),
            "SERVICE_NAME": "matcher",
            "ROLE": role,
        }
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "matcher"],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        return f"http://127.0.0.1:{port}"

    yield start
    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.wait(timeout=20)


async def _ready(http: httpx.AsyncClient, url: str) -> dict[str, str]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if (await http.get(url + "/readyz")).status_code == 200:
                health: dict[str, str] = (await http.get(url + "/healthz")).json()
                return health
        except httpx.HTTPError:
            pass
        await asyncio.sleep(0.3)
    raise AssertionError(f"{url} not ready within 60 s")


async def _members(kafka_bootstrap: str) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap, **stack_client_kwargs())
    await admin.start()
    try:
        [response] = await admin.describe_consumer_groups([APPLICATIONS_GROUP])
        group = response.groups[0]
        # (error_code, group_id, state, protocol_type, protocol, members, ...)
        state, members = group[2], group[5]
        return len(members) if state == "Stable" else -1
    finally:
        await admin.close()


async def _members_settle(kafka_bootstrap: str, want: int, timeout_s: float = 45) -> int:
    deadline = time.monotonic() + timeout_s
    count = await _members(kafka_bootstrap)
    while count != want and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        count = await _members(kafka_bootstrap)
    return count


async def test_api_process_takes_webhooks_and_the_worker_decides(
    matcher_ready: Matcher,
    producer: AIOKafkaProducer,
    bookings: BookingsWatcher,
    http: httpx.AsyncClient,
    kafka_bootstrap: str,
    stack_env: dict[str, str],
    spawn: object,
) -> None:
    """An `api` process answers a signed webhook 202 and the application is decided (by a
    consumer elsewhere), while the applications group keeps its member count; a `worker`
    process answers 404 on the webhook path, reports its role, and joins the group (one
    member more)."""
    assert callable(spawn)
    before = await _members_settle(kafka_bootstrap, 1)
    assert before >= 1
    api_url = spawn("api")
    assert (await _ready(http, api_url))["role"] == "api"
    posting = await publish_posting(producer, await matcher_ready.now(), capacity=1)
    await matcher_ready.posting_open(posting.posting_id)
    application_id = client.new_application_id()
    r = await client.submit_application(
        http,
        posting_id=posting.posting_id,
        citizen=client.citizen_profile(),
        application_id=application_id,
        secret=stack_env["PARTNER_WEBHOOK_SECRET"].split(",")[0],
        matcher_url=api_url,
    )
    assert r.status_code == 202, r.text
    assert (await matcher_ready.decided(application_id))["status"] == "confirmed"
    await bookings.wait_for(posting.posting_id, 1, "BookingConfirmed")
    await asyncio.sleep(3)  # a consumer would have joined by now
    assert await _members(kafka_bootstrap) == before

    worker_url = spawn("worker")
    assert (await _ready(http, worker_url))["role"] == "worker"
    refused = await http.post(worker_url + "/v1/partner/webhooks", content=b"{}")
    assert refused.status_code == 404
    assert await _members_settle(kafka_bootstrap, before + 1) == before + 1
