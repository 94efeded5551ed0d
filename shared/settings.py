"""Settings common to every service, read from the environment (pydantic-settings).

Every value that bounds work (retries, batch sizes, body sizes) lives here so an operator
can tune it without touching code. Service-specific settings subclass `ServiceSettings`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

AppEnv = Literal["production", "test", "demo"]


class ServiceSettings(BaseSettings):
    """What every service process needs: where Kafka and Postgres are, tokens, bounds."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    service_name: str = "service"
    app_env: AppEnv = "production"
    host: str = "127.0.0.1"
    port: int = 8000

    # The service's own role (the launcher passes each process its own URL); the role can
    # touch only the schema named after the service.
    database_url: str = "postgresql://localhost/gwangsan"
    db_pool_size_min: int = 2
    db_pool_size_max: int = 10
    db_statement_timeout_ms: int = 10_000

    kafka_bootstrap_servers: str = "127.0.0.1:9092"

    admin_token: SecretStr = SecretStr("")
    finance_token: SecretStr = SecretStr("")

    # Consumers: bounded retries of a failing handler before the message goes to the DLQ.
    consumer_attempts_max: int = 3
    consumer_retry_backoff_ms: int = 100
    # Transient infrastructure errors (Postgres down) are retried with this cap on backoff;
    # they block the partition on purpose rather than dead-lettering good messages.
    consumer_transient_backoff_max_ms: int = 5_000
    # Messages fetched together are applied in one transaction (falling back to one at a time
    # if any of them fails); 1 turns batching off. The wait bounds the added latency when idle.
    consumer_batch_size_max: int = 500
    consumer_batch_wait_ms: int = 10

    # Outbox relay.
    outbox_batch_size_max: int = 500
    outbox_poll_interval_ms: int = 500

    # HTTP.
    http_body_size_max_bytes: int = 64 * 1024
    page_size_max: int = 200

    # Clock refresh: how often a service re-reads the shared (test/demo) clock.
    clock_refresh_interval_ms: int = 200


__all__ = ["AliasChoices", "AppEnv", "Field", "ServiceSettings"]
