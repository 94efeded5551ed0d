"""Settings common to every service, read from the environment (pydantic-settings).

Every value that bounds work (retries, batch sizes, body sizes) lives here so an operator
can tune it without touching code. Service-specific settings subclass `ServiceSettings`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

AppEnv = Literal["production", "test", "demo"]
Role = Literal["all", "api", "worker"]


class ServiceSettings(BaseSettings):
    """What every service process needs: where Kafka and Postgres are, tokens, bounds."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    # Which service this process is (logs, metrics, consumer groups, schema).
    service_name: str = "service"
    # `production` uses the machine's clock and hides the clock endpoints; `test` and `demo`
    # share a controllable clock so a month can be played in seconds.
    app_env: AppEnv = "production"
    # Loopback by default; containers set 0.0.0.0.
    host: str = "127.0.0.1"
    # Each service has its own default (registry 8001, matcher 8002, allowance 8003).
    port: int = 8000
    # What this process runs (docs/decisions/0008): `all` = the HTTP API, the Kafka
    # handlers, the sweepers and background senders in one process (local stack, small
    # deployments); `api` = the HTTP API only (plus the outbox relay), scaled by requests;
    # `worker` = handlers, sweepers and senders only (its HTTP port serves health, readiness
    # and metrics), scaled up to the topics' partition count.
    role: Role = "all"

    # The service's own role (the launcher passes each process its own URL); the role can
    # touch only the schema named after the service.
    database_url: str = "postgresql://localhost/gwangsan"
    # Connections per process: small, since handlers are short transactions and Postgres
    # connections are expensive; raise with the replica count in mind (max_connections).
    db_pool_size_min: int = 2
    db_pool_size_max: int = 10
    # A runaway statement is cancelled rather than holding locks forever.
    db_statement_timeout_ms: int = 10_000
    # Production connects to Postgres only over TLS with the server's certificate and name
    # checked (`sslmode=verify-full` in the URL): bank details and birth dates cross that
    # link. Turn off only for a database on the same host.
    db_require_verified_tls: bool = True
    # How long opening a connection may take: during a Postgres outage a request answers
    # 503 with Retry-After within this bound instead of hanging.
    db_connect_timeout_ms: int = 2_000

    # Comma-separated host:port list.
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    # How this process authenticates to Kafka (docs/decisions/0010): SASL/SCRAM-SHA-512
    # over TLS with one user per service, whose ACLs allow only its own topics. PLAINTEXT
    # is for an external Kafka without security (KAFKA_BOOTSTRAP_SERVERS); never production.
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    # The SASL mechanism of the user (the local stack and deploy/k8s use SCRAM-SHA-512).
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = "SCRAM-SHA-512"
    # This service's own Kafka user and password (the launcher and the k8s Secret give each
    # process only its own).
    kafka_sasl_username: str = ""
    kafka_sasl_password: SecretStr = SecretStr("")
    # The CA that signed the brokers' certificates (PEM); empty = the system's CAs.
    kafka_ssl_cafile: str = ""

    # The admin staff token (compared in constant time); from the environment or a Secret
    # only. The finance token is the allowance service's alone (AllowanceSettings).
    admin_token: SecretStr = SecretStr("")

    # Consumers: bounded retries of a failing handler before the message goes to the DLQ.
    consumer_attempts_max: int = 3
    consumer_retry_backoff_ms: int = 100
    # Transient infrastructure errors (Postgres down) are retried with this cap on backoff;
    # they block the partition on purpose rather than dead-lettering good messages.
    consumer_transient_backoff_max_ms: int = 5_000
    # Messages fetched together are applied in one transaction (falling back to one at a time
    # if any of them fails); 1 turns batching off.
    consumer_batch_size_max: int = 500
    # How long FastStream's own loop waits for a topic's first records, and then sleeps
    # after an empty poll: it only runs until the first records arrive (then the consumer
    # polls itself, `consumer_poll_wait_ms`), so this delays an idle topic's first event
    # after a start by at most this much, and sets how often it wakes until then.
    consumer_batch_wait_ms: int = Field(default=200, ge=1, le=5_000)
    # How long one poll of a consumer waits when nothing arrives. A record ends the wait at
    # once (aiokafka wakes the poll), so this costs no latency: it is how often an idle
    # consumer wakes. It was 10 ms, and every idle consumer woke ~50 times a second.
    consumer_poll_wait_ms: int = Field(default=1_000, ge=10, le=30_000)
    # Records fetched ahead while a batch is applied (per topic; shared/prefetch.py): a
    # record arriving during batch N is applied in N+1, not N+2, and a backlog is applied
    # without waiting for a fetch between batches. 0 applies each fetch inline. Off here,
    # on for the matcher (2000, gathering 3 ms), whose decisions someone waits for; the
    # read models gain nothing from it (docs/performance.md, levers 7, 16 and 17).
    consumer_prefetch_max: int = Field(default=0, ge=0)
    # With fetching ahead: how long to wait after a fetch that brought records before the
    # next, so the events of those milliseconds come back in one fetch and one batch
    # instead of a fetch and a batch each (which, at 500/s, cost the worker and Kafka more
    # CPU than they saved). Never after an empty fetch: an idle topic's first event is
    # handed over at once.
    consumer_prefetch_gather_ms: int = Field(default=0, ge=0, le=100)
    # With fetching ahead: offsets are committed at most this often (the batches applied
    # meanwhile in one request; at once on a rebalance or a stop). 0: after every batch. A
    # crash redelivers at most this much more, which the event-id guard drops. At 500/s the
    # matcher committed after each of its ~50–130 batches a second, a Kafka request each
    # (docs/performance.md, lever 18).
    consumer_commit_interval_ms: int = Field(default=0, ge=0, le=5_000)
    # How long the broker may hold a fetch to let events gather (its `fetch.max.wait.ms`,
    # with a minimum of 1 MiB so it holds). 0: every fetch returns as soon as one event is
    # there, for consumers on a path someone waits for (the matcher's decisions). Read
    # models and reports (the registry's roster, the allowance's facts) default to 100 ms:
    # a tenth of a second later on a screen, and a tenth of the batches, each of which
    # costs the consumer, Kafka and Postgres a round of work (docs/performance.md).
    consumer_linger_ms: int = Field(default=0, ge=0, le=5_000)

    # Outbox relay: rows published per broker round trip, and how often it looks for rows
    # when no NOTIFY woke it (a fallback; NOTIFY normally wakes it within milliseconds).
    outbox_batch_size_max: int = 500
    outbox_poll_interval_ms: int = 500
    # How long the relay, woken by a commit, lets more commits gather before it publishes:
    # one claim, produce and mark for all of them instead of one per transaction. Events
    # feed other services' read models and sagas, which nobody waits on to the
    # millisecond; a decision reaches the partner without a relay (docs/operations.md).
    outbox_linger_ms: int = Field(default=50, ge=0, le=1_000)
    # Outbox relay shards (shared/shards.py): the outbox is split by the hash of the event's
    # key, and the live processes of the service share the shards (each held by one at a
    # time, so a key's events still leave in order). The most processes that publish at
    # once; 1 = one relay per schema. At most 64; changing it needs no migration, and
    # processes with different values never publish one key at once (docs/operations.md).
    # 1 by default: one process holding four shards made decisions slower than one holding
    # one in the 60 s latency runs of issue 20 (docs/performance.md); raise it with the
    # number of processes that should publish at once.
    outbox_shards: int = Field(default=1, ge=1, le=64)

    # HTTP: larger request bodies are refused with 413 before they are parsed.
    http_body_size_max_bytes: int = 64 * 1024
    # A request whose whole body has not arrived this long after the app first reads it is
    # answered 408 (shared/http.py): a slow-body client cannot hold a worker slot.
    http_body_read_timeout_s: float = 10.0
    # uvicorn (shared/service.py `serve`): an idle keep-alive connection is closed after
    # this long; past `http_concurrency_max` open connections and tasks new requests get
    # 503 rather than memory and file descriptors running out.
    http_keep_alive_timeout_s: int = 5
    http_concurrency_max: int = 1000
    # uvicorn has no timeout for the request line and headers (shared/server.py): a
    # connection whose headers have not all arrived this long after it opened, or after its
    # next request's first byte, is answered 408 and closed (nginx's client_header_timeout).
    http_header_read_timeout_s: float = 10.0
    # /docs, /redoc and /openapi.json in production: off unless turned on (the API
    # documents list every admin route and field; test and demo always serve them).
    http_api_docs_in_production: bool = False
    # The most items one list page may return (cursor pages).
    page_size_max: int = 200

    # Request limits per process (shared/ratelimit.py): 429 with Retry-After past them.
    # Per client address — generous, so the demo, tests and benchmarks on loopback never
    # meet it; production lowers it at the Ingress and here (deploy/k8s) and lists the
    # partner's egress addresses as exempt, since all of the partner's users arrive from a
    # few addresses.
    http_rate_per_address_per_s: float = 5_000
    http_rate_per_address_burst: int = 50_000
    # Per credential (the Authorization header): one facility key, one staff token.
    http_rate_per_credential_per_s: float = 500
    http_rate_per_credential_burst: int = 5_000
    # Comma-separated client addresses no per-address limit applies to.
    http_rate_exempt_addresses: str = ""
    # Lockout (OWASP API2 brute force): more than this many bad secrets for one key id (or,
    # for staff tokens, from one address) within the window answer 429 for that key.
    auth_failures_max: int = 20
    auth_failure_window_s: int = 60

    # Prometheus metrics on a port of their own, served from this process's registry by
    # prometheus_client (shared/server.py); the API port then answers 404 for /metrics, so
    # nothing that can reach the API (an Ingress, a caller) reads them. deploy/k8s sets 9100
    # and lets only the monitoring namespace reach it. 0 = /metrics on the API port (the
    # local stack, tests and benchmarks).
    metrics_port: int = 0

    # Clock refresh: how often a service re-reads the shared (test/demo) clock.
    clock_refresh_interval_ms: int = 200

    def staff_tokens(self) -> dict[str, SecretStr]:
        """The static staff credentials this service accepts, by role (shared/web.py
        `staff`); a service with more roles adds its own."""
        return {"admin": self.admin_token}


__all__ = ["AliasChoices", "AppEnv", "Field", "Role", "ServiceSettings"]
