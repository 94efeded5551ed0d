"""shared/server.py: metrics on a port of their own, and the bound on slow headers — each
against a real listening socket on loopback; no Kafka, no Postgres."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from starlette.types import Receive, Scope, Send

from shared.server import metrics_listener, with_header_timeout
from shared.service import ServiceSpec, create_app
from shared.settings import ServiceSettings

HEADER_TIMEOUT_S = 0.5


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _spec(tmp_path: Path) -> ServiceSpec:
    return ServiceSpec(name="metricsport", title="x", description="", migrations_dir=tmp_path)


async def test_metrics_port_serves_the_registry_and_the_api_port_answers_404(
    tmp_path: Path,
) -> None:
    """With `metrics_port` set, the API port's /metrics is a 404 and the metrics port serves
    the process's registry — including the request the API just counted; the port is closed
    again when the listener stops. Without the setting /metrics stays on the API port."""
    port = _free_port()
    app = create_app(_spec(tmp_path), ServiceSettings(app_env="test", metrics_port=port))
    transport = httpx.ASGITransport(app=app)
    async with (
        metrics_listener("127.0.0.1", port),
        httpx.AsyncClient(transport=transport, base_url="http://t") as api,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as scraper,
    ):
        assert (await api.get("/healthz")).status_code == 200
        assert (await api.get("/metrics")).status_code == 404
        scraped = await scraper.get("/metrics")
        assert scraped.status_code == 200
        assert scraped.headers["content-type"].startswith("text/plain")
        assert (
            'gwangsan_http_requests_total{method="GET",route="/healthz",'
            'service="metricsport",status="200"}'
        ) in scraped.text
        assert 'route="unmatched",service="metricsport",status="404"' in scraped.text
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2)

    today = create_app(_spec(tmp_path), ServiceSettings(app_env="test"))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=today), base_url="http://t"
    ) as c:
        answer = await c.get("/metrics")
        assert answer.status_code == 200 and "gwangsan_http_requests_total" in answer.text


async def test_metrics_port_zero_serves_nothing() -> None:
    """The default (0) opens no listener: the context is a no-op."""
    async with metrics_listener("127.0.0.1", 0):
        pass


async def _slow_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers after 1 s (longer than the header bound) to show the bound is headers only."""
    assert scope["type"] == "http"
    if scope["path"] == "/slow":
        await asyncio.sleep(2 * HEADER_TIMEOUT_S)
    body = b"ok"
    headers = [(b"content-type", b"text/plain"), (b"content-length", b"2")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture
async def server() -> AsyncIterator[int]:
    """uvicorn with the guarded protocol on a free loopback port, as `serve` runs it."""
    sock = socket.create_server(("127.0.0.1", 0))
    config = uvicorn.Config(
        _slow_app,
        http=with_header_timeout(HEADER_TIMEOUT_S),
        lifespan="off",
        log_config=None,
        access_log=False,
        timeout_keep_alive=5,
    )
    instance = uvicorn.Server(config)
    task = asyncio.create_task(instance.serve(sockets=[sock]))
    while not instance.started:
        await asyncio.sleep(0.01)
    yield sock.getsockname()[1]
    instance.should_exit = True
    await task
    sock.close()


async def _until_closed(reader: asyncio.StreamReader) -> bytes:
    return await asyncio.wait_for(reader.read(), timeout=10 * HEADER_TIMEOUT_S)


GET = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"


async def test_a_connection_that_sends_nothing_is_closed_at_the_bound(server: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server)
    started = time.monotonic()
    received = await _until_closed(reader)
    took = time.monotonic() - started
    writer.close()
    assert received.startswith(b"HTTP/1.1 408"), received
    assert HEADER_TIMEOUT_S * 0.8 <= took < HEADER_TIMEOUT_S + 1, took


def _trickle(port: int, data: bytes, interval_s: float) -> tuple[bytes, float]:
    """Send `data` one byte every `interval_s` on a blocking socket, reading whatever the
    server answers, until it closes the connection; (answer, seconds it stayed open)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        started = time.monotonic()
        received = b""
        for byte in data:
            try:
                sock.sendall(bytes([byte]))
                sock.settimeout(interval_s)
                chunk = sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                break
            if not chunk:
                break
            received += chunk
        return received, time.monotonic() - started


async def test_headers_trickled_byte_by_byte_are_cut_off_at_the_bound(server: int) -> None:
    """A slowloris client sending one header byte every 50 ms, never finishing (it would
    go on for 50 s), gets a 408 and a closed connection at the bound."""
    trickle = b"GET / HTTP/1.1\r\nHost: t\r\nX-Slow: " + b"a" * 1000
    received, took = await asyncio.to_thread(_trickle, server, trickle, 0.05)
    assert received.startswith(b"HTTP/1.1 408"), received
    assert HEADER_TIMEOUT_S * 0.8 <= took < HEADER_TIMEOUT_S + 1, took


async def test_keep_alive_requests_are_bounded_but_not_idle_time_or_slow_answers(
    server: int,
) -> None:
    """On one keep-alive connection: a request answered after twice the bound is still 200
    (the bound covers headers, not the app); idling longer than the bound between requests
    is the keep-alive timeout's business, not this one's; the next request's headers, begun
    and never finished, are cut off at the bound."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server)
    writer.write(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
    assert (await asyncio.wait_for(reader.readuntil(b"ok"), 5)).startswith(b"HTTP/1.1 200")
    await asyncio.sleep(2 * HEADER_TIMEOUT_S)
    writer.write(GET)
    assert (await asyncio.wait_for(reader.readuntil(b"ok"), 5)).startswith(b"HTTP/1.1 200")
    await asyncio.sleep(2 * HEADER_TIMEOUT_S)
    writer.write(b"GET / HTTP/1.1\r\nHo")
    started = time.monotonic()
    received = await _until_closed(reader)
    took = time.monotonic() - started
    writer.close()
    assert received.startswith(b"HTTP/1.1 408"), received
    assert HEADER_TIMEOUT_S * 0.8 <= took < HEADER_TIMEOUT_S + 1, took
