"""A real registry process started as deploy/k8s runs it — METRICS_PORT set — beside the
stack's own: /metrics only on the metrics port (404 on the API port), and request headers
trickled on the API port cut off at HTTP_HEADER_READ_TIMEOUT_S. ROLE=api, so it joins no
consumer group and does not disturb the stack's registry."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.stack

ROOT = Path(__file__).resolve().parents[2]
HEADER_TIMEOUT_S = 1.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def registry(stack_env: dict[str, str]) -> Iterator[tuple[int, int]]:
    """(API port, metrics port) of a ready `python -m registry` with METRICS_PORT set."""
    api_port, metrics_port = _free_port(), _free_port()
    env = {
        **os.environ,
        **stack_env,
        "DATABASE_URL": stack_env["REGISTRY_DATABASE_URL"],
        "KAFKA_SASL_USERNAME": "registry",
        "KAFKA_SASL_PASSWORD": stack_env["REGISTRY_KAFKA_PASSWORD"],
        "SERVICE_NAME": "registry",
        "ROLE": "api",
        "PORT": str(api_port),
        "METRICS_PORT": str(metrics_port),
        "HTTP_HEADER_READ_TIMEOUT_S": str(HEADER_TIMEOUT_S),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "registry"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, "the registry exited at start-up"
            try:
                if httpx.get(f"http://127.0.0.1:{api_port}/readyz", timeout=2).is_success:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "not ready within 60 s"
            time.sleep(0.3)
        yield api_port, metrics_port
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_metrics_are_served_only_on_the_metrics_port(registry: tuple[int, int]) -> None:
    api_port, metrics_port = registry
    assert httpx.get(f"http://127.0.0.1:{api_port}/healthz", timeout=5).status_code == 200
    assert httpx.get(f"http://127.0.0.1:{api_port}/metrics", timeout=5).status_code == 404
    scraped = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5)
    assert scraped.status_code == 200
    for series in (
        'gwangsan_http_requests_total{method="GET",route="/healthz",service="registry",'
        'status="200"}',
        'route="unmatched",service="registry",status="404"',
        "process_resident_memory_bytes",
    ):
        assert series in scraped.text, series


def test_headers_trickled_to_the_api_port_are_cut_off(registry: tuple[int, int]) -> None:
    """A slowloris client (one header byte every 100 ms, for 100 s if let) gets a 408 and
    a closed connection at the bound; a whole request on the next connection is answered."""
    api_port, _ = registry
    trickle = b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: " + b"a" * 1000
    with socket.create_connection(("127.0.0.1", api_port), timeout=5) as sock:
        started = time.monotonic()
        received = b""
        for byte in trickle:
            try:
                sock.sendall(bytes([byte]))
                sock.settimeout(0.1)
                chunk = sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                break
            if not chunk:
                break
            received += chunk
        took = time.monotonic() - started
    assert received.startswith(b"HTTP/1.1 408"), received
    assert HEADER_TIMEOUT_S * 0.8 <= took < HEADER_TIMEOUT_S + 2, took
    assert httpx.get(f"http://127.0.0.1:{api_port}/healthz", timeout=5).status_code == 200
