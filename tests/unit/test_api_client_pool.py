"""The services' HTTP client drops an idle connection before the services close it."""

from __future__ import annotations

from shared.settings import ServiceSettings
from tools.api_client import Api, Endpoints, http_client
from tools.api_client.core import KEEPALIVE_EXPIRY_S


async def test_idle_connections_expire_well_before_the_services_keep_alive_timeout() -> None:
    """A connection the server is about to close is never reused (a request racing the
    close fails with "Server disconnected without sending a response"): the client's
    expiry is at most half the services' keep-alive timeout, in the pool of every client
    built by `http_client` and of `Api`'s own."""
    server_s = ServiceSettings.model_fields["http_keep_alive_timeout_s"].default
    assert server_s / 2 >= KEEPALIVE_EXPIRY_S
    ends = Endpoints.from_env({}, sim_url="http://127.0.0.1:1")
    async with http_client(connections_max=8) as http, Api(ends) as api:
        for client in (http, api.http):
            pool = client._transport._pool  # type: ignore[attr-defined]
            assert pool._keepalive_expiry == KEEPALIVE_EXPIRY_S
