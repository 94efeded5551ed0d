"""What the HTTP server bounds beyond uvicorn's own settings, and where metrics are served.

- `HeaderTimeoutProtocol`: uvicorn (httptools and h11 alike, 0.54) has no timeout for the
  request line and headers — a connection that sends half a header holds a slot until the
  client goes away (issue 21). This subclass of uvicorn's httptools protocol arms one timer
  when a connection opens and when a request's first byte arrives, and disarms it when the
  parser has the whole header block (httptools' `on_headers_complete` callback); if it
  fires, the client gets a 408 and the connection is closed. Parsing, keep-alive and
  pipelining stay uvicorn's.
- `metrics_listener`: Prometheus metrics on a port of their own (`metrics_port`), served by
  prometheus_client's own server in a thread of this process, from the same registry the
  HTTP middleware and the consumers write to; the API port then answers 404 for /metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from prometheus_client import start_http_server
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger(__name__)

TIMEOUT_408 = (
    b"HTTP/1.1 408 Request Timeout\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: 29\r\n"
    b"connection: close\r\n\r\n"
    b"request headers took too long"
)


class HeaderTimeoutProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a bound on the time to receive the headers.

    The timer runs from the connection's opening (a client that connects and sends nothing)
    and from each request's first byte (a keep-alive client's next request; the idle time
    between requests is uvicorn's keep-alive timeout) until its headers are complete. Set
    `header_timeout_s` on a subclass (`with_header_timeout`)."""

    header_timeout_s: float = 10.0
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(  # type: ignore[override]
        self, transport: asyncio.Transport
    ) -> None:
        super().connection_made(transport)
        self._arm_header_timer()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm_header_timer()

    def on_headers_complete(self) -> None:
        self._disarm_header_timer()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)

    def _arm_header_timer(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_late)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            # A pipelined request's headers are late while an earlier response is still
            # being written: finish that response, then close (as uvicorn's shutdown does).
            self.cycle.keep_alive = False
            return
        log.info("headers not received within %s s: connection closed", self.header_timeout_s)
        self.transport.write(TIMEOUT_408)
        self.transport.close()


def with_header_timeout(timeout_s: float) -> type[HeaderTimeoutProtocol]:
    """The protocol class to give uvicorn (`http=`), bounding headers to `timeout_s`."""
    return type("HeaderTimeoutProtocol", (HeaderTimeoutProtocol,), {"header_timeout_s": timeout_s})


@contextlib.asynccontextmanager
async def metrics_listener(host: str, port: int) -> AsyncIterator[None]:
    """Serve the default Prometheus registry on `host:port` while the context is open;
    port 0 serves nothing (the API port's /metrics route does). The server is
    prometheus_client's (a daemon thread per scrape), so a scrape is answered even while
    the event loop is saturated by API traffic."""
    if not port:
        yield
        return
    server, thread = start_http_server(port, addr=host)
    log.info("metrics served on port %s", port)
    try:
        yield
    finally:
        await asyncio.to_thread(server.shutdown)
        server.server_close()
        thread.join(timeout=5)
