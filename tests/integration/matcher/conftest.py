"""Fixtures of the matcher's real-stack tests: the running matcher, the partner simulator on
the port the matcher notifies (started here unless one already runs), a Kafka producer to
play the registry, and a watcher of `matcher.bookings.v1`."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from shared.kafka import make_producer, stack_security
from tools.api_client import http_client

from .helpers import BookingsWatcher, Matcher, Simulator

ROOT = Path(__file__).resolve().parents[3]


def _sim_answers(url: str) -> bool:
    try:
        r = httpx.get(url + "/healthz", timeout=1)
    except httpx.HTTPError:
        return False
    return r.status_code == 200 and r.json().get("service") == "partner_sim"


@pytest.fixture(scope="session")
def sim_url(stack_env: dict[str, str]) -> Iterator[str]:
    """The simulator at PARTNER_NOTIFY_URL's host and port (the matcher posts there)."""
    notify_url = urlsplit(
        stack_env.get("PARTNER_NOTIFY_URL", "http://127.0.0.1:8009/notifications")
    )
    url = f"{notify_url.scheme}://{notify_url.hostname}:{notify_url.port}"
    if _sim_answers(url):
        yield url  # someone runs one (the demo, another suite): share it
        return
    env = {**os.environ, **stack_env}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tools.partner_sim", "--port", str(notify_url.port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while not _sim_answers(url):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("the partner simulator did not start")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="session")
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with http_client(timeout_s=30, connections_max=200) as client:
        yield client


@pytest.fixture(scope="session")
def matcher(http: httpx.AsyncClient, stack_env: dict[str, str]) -> Matcher:
    return Matcher(http, stack_env["MATCHER_URL"], stack_env["ADMIN_TOKEN"])


@pytest.fixture(scope="session")
def sim(http: httpx.AsyncClient, sim_url: str) -> Simulator:
    return Simulator(http, sim_url)


@pytest.fixture(scope="session")
async def producer(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaProducer]:
    p = make_producer(kafka_bootstrap, "matcher-tests", stack_security())
    await p.start()
    yield p
    await p.stop()


@pytest.fixture(scope="session")
async def bookings(kafka_bootstrap: str) -> AsyncIterator[BookingsWatcher]:
    watcher = BookingsWatcher(kafka_bootstrap)
    await watcher.start()
    yield watcher
    await watcher.stop()


@pytest.fixture(scope="session")
async def matcher_ready(matcher: Matcher) -> Matcher:
    """Wait (bounded) for the matcher to answer readiness, e.g. after a crash test."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            r = await matcher.http.get(matcher.url + "/readyz")
            if r.status_code == 200:
                return matcher
        except httpx.HTTPError:
            pass
        await asyncio.sleep(0.5)
    pytest.fail("the matcher is not ready")
