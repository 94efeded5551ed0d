"""The wiring every service shares: one process serving HTTP (FastAPI) and consuming Kafka
(FastStream), with its Postgres pool, outbox relay, clock and background sweepers.

A service describes itself with a `ServiceSpec` (name, migrations, routers, handlers,
sweepers); `create_app` builds the FastAPI app whose lifespan starts and stops everything
in order. Why one process and not two: docs/decisions/0002-one-process-per-service.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.telemetry import TelemetryConfig
from fastapi_offline import FastAPIOffline
from faststream.kafka import KafkaBroker
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import AwareDatetime, BaseModel, ConfigDict

from shared import metrics, migrations, problems
from shared.clock import Clock, ClockWentBackwardsError, SharedClock
from shared.consumer import EventConsumer
from shared.context import ServiceContext as ServiceContext
from shared.db import create_pool
from shared.http import FastRoute, ServiceMiddleware
from shared.kafka import KafkaSecurity, make_producer
from shared.logs import configure as configure_logs
from shared.outbox import OutboxRelay
from shared.outbox import backlog as outbox_backlog
from shared.ratelimit import Lockout, RequestLimits
from shared.server import metrics_listener, with_header_timeout
from shared.settings import ServiceSettings
from shared.web import Ctx, Staff, staff

log = logging.getLogger(__name__)


Sweeper = Callable[[ServiceContext[Any]], Awaitable[None]]


@dataclass(frozen=True)
class SweeperSpec:
    """A periodic job (timers: draws at close, posting close, retention)."""

    name: str
    run_once: Sweeper
    interval_ms: int


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    title: str
    description: str
    migrations_dir: Path
    routers: Sequence[APIRouter] = ()
    # Hot endpoints served by the middleware itself (shared/http.py); also declared in a
    # router so the OpenAPI document has them.
    fast_routes: Sequence[FastRoute] = ()
    register_handlers: Callable[[EventConsumer, ServiceContext[Any]], None] | None = None
    sweepers: Sequence[SweeperSpec] = ()
    on_start: Callable[[ServiceContext[Any]], Awaitable[None]] | None = None
    on_stop: Callable[[ServiceContext[Any]], Awaitable[None]] | None = None
    # Background work (e.g. the matcher's notification sender): started after `on_start`
    # and stopped before `on_stop`, only in roles that run workers (`all`, `worker`).
    on_worker_start: Callable[[ServiceContext[Any]], Awaitable[None]] | None = None
    on_worker_stop: Callable[[ServiceContext[Any]], Awaitable[None]] | None = None
    openapi_tags: Sequence[dict[str, str]] = ()
    # What the service calls on others (OpenAPI 3.1 `webhooks`, e.g. the matcher's partner
    # notifications): documented in /openapi.json, never served.
    webhooks: APIRouter | None = None


NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


def freeze_heap() -> None:
    """Call once started: everything built so far (app, schemas, clients) lives as long as
    the process, so move it out of the cyclic collector's generations — otherwise every
    collection that per-request garbage triggers walks it again (gc.freeze in CPython's
    docs). In the ingest profile this was the largest single cost (docs/performance.md)."""
    gc.collect()
    gc.freeze()


class ClockBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    now: AwareDatetime


class ClockView(BaseModel):
    now: datetime
    controllable: bool


Admin = Annotated[Staff, Depends(staff("admin"))]


def _clock_router() -> APIRouter:
    router = APIRouter(prefix="/v1/admin/clock", tags=["admin"])

    @router.get("", response_model=ClockView, summary="Read the shared clock (test/demo only)")
    async def get_clock(_: Admin, ctx: Ctx[ServiceSettings]) -> ClockView:
        return ClockView(now=ctx.clock.now(), controllable=ctx.clock.controllable)

    @router.put(
        "",
        response_model=ClockView,
        summary="Move the shared clock forward (test/demo only); all services follow",
        responses={409: {"description": "the new time is earlier than the clock's"}},
    )
    async def put_clock(body: ClockBody, _: Admin, ctx: Ctx[ServiceSettings]) -> ClockView:
        assert isinstance(ctx.clock, SharedClock)
        try:
            now = await ctx.clock.set(body.now)
        except ClockWentBackwardsError as exc:
            raise problems.Problem(409, "clock_backwards", str(exc)) from exc
        return ClockView(now=now, controllable=True)

    return router


def insecure_database_url(settings: ServiceSettings) -> str | None:
    """Why production may not use this database URL (no verified TLS), or None."""
    if settings.app_env != "production" or not settings.db_require_verified_tls:
        return None
    query = parse_qs(urlsplit(settings.database_url).query)
    if query.get("sslmode") != ["verify-full"]:
        return (
            "DATABASE_URL must use TLS with the server's certificate checked in production:"
            " add ?sslmode=verify-full&sslrootcert=<CA file> (or set"
            " DB_REQUIRE_VERIFIED_TLS=false for a database on the same host)"
        )
    return None


async def _connect_pool(settings: ServiceSettings, schema: str) -> asyncpg.Pool:
    """Wait (bounded) for Postgres at start-up, so a restart during an outage recovers."""
    deadline = asyncio.get_running_loop().time() + 60
    while True:
        try:
            return await create_pool(
                settings.database_url,
                schema=schema,
                size_min=settings.db_pool_size_min,
                size_max=settings.db_pool_size_max,
                statement_timeout_ms=settings.db_statement_timeout_ms,
                connect_timeout_ms=settings.db_connect_timeout_ms,
            )
        except (OSError, asyncpg.PostgresError) as exc:
            if asyncio.get_running_loop().time() > deadline:
                raise RuntimeError(f"Postgres not reachable at start-up: {exc}") from exc
            log.warning("waiting for Postgres: %s", exc)
            await asyncio.sleep(1)


async def sample_consumer_lag(
    broker: KafkaBroker, queued: Mapping[str, int] | None = None
) -> dict[tuple[str, str], int]:
    """Messages behind the partition ends, per (group, topic): each consumer's position
    against the high-water mark of its last fetch (no extra broker round trips), plus the
    records fetched ahead but not applied yet (`queued` per topic; shared/prefetch.py)."""
    lags: dict[tuple[str, str], int] = {}
    for sub in broker.subscribers:
        consumer = getattr(sub, "consumer", None)
        group = getattr(sub, "group_id", None) or getattr(consumer, "_group_id", None)
        if consumer is None or group is None:
            continue
        for tp in consumer.assignment():
            high = consumer.highwater(tp)
            if high is None:
                continue
            position = await asyncio.wait_for(consumer.position(tp), timeout=2)
            key = (str(group), tp.topic)
            lags[key] = lags.get(key, 0) + max(high - position, 0)
    for key in lags:
        lags[key] += (queued or {}).get(key[1], 0)
    return lags


async def _sample_forever(
    ctx: ServiceContext[Any], broker: KafkaBroker, interval_s: float = 10.0
) -> None:
    """Gauges that must stay fresh even when the work they describe is stuck: consumer lag
    (a series for a partition this replica no longer owns is removed, so sums across
    replicas stay right) and the outbox backlog (sampled here, not by the relay, so an
    outbox that cannot publish still shows its growing age)."""
    reported: set[tuple[str, str]] = set()
    while True:
        await asyncio.sleep(interval_s)
        try:
            lags = await sample_consumer_lag(broker, ctx.consumer.queued_by_topic())
            for key in reported - set(lags):
                metrics.CONSUMER_LAG.remove(*key)
            for (group, topic), lag in lags.items():
                metrics.CONSUMER_LAG.labels(group, topic).set(lag)
            reported = set(lags)
        except Exception as exc:  # a rebalance in progress: try again next time
            log.debug("lag sampling skipped: %s", exc)
        try:
            async with ctx.pool.acquire() as conn:
                count, age_s = await outbox_backlog(conn)
            metrics.OUTBOX_BACKLOG.labels(ctx.relay.schema).set(count)
            metrics.OUTBOX_OLDEST_AGE.labels(ctx.relay.schema).set(age_s)
        except Exception as exc:  # Postgres down: readiness says so; keep the last values
            log.debug("outbox sampling skipped: %s", exc)


async def _run_sweeper(ctx: ServiceContext[Any], spec: SweeperSpec) -> None:
    interval_s = spec.interval_ms / 1000
    while True:
        try:
            await spec.run_once(ctx)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("sweeper %s failed; will run again", spec.name)
        await asyncio.sleep(interval_s)


def _without_docs(**kwargs: Any) -> FastAPI:
    """A FastAPI app serving no API documents (production, unless turned on)."""
    return FastAPI(docs_url=None, redoc_url=None, openapi_url=None, **kwargs)


def create_app(spec: ServiceSpec, settings: ServiceSettings) -> FastAPI:
    """The FastAPI app of one service, with the whole lifecycle in its lifespan.

    `settings.role` picks what the process runs (decision 0008): the API routes, or the
    consumers, sweepers and `on_worker_*` hooks, or both. `on_start`/`on_stop` run in
    every role."""
    schema = spec.name
    runs_api = settings.role in ("all", "api")
    runs_worker = settings.role in ("all", "worker")

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logs(spec.name)
        async with metrics_listener(settings.host, settings.metrics_port), started(app):
            yield

    @contextlib.asynccontextmanager
    async def started(app: FastAPI) -> AsyncIterator[None]:
        refused = insecure_database_url(settings)
        if refused is not None:
            raise RuntimeError(refused)
        pool = await _connect_pool(settings, schema)
        async with pool.acquire() as conn:
            applied = await migrations.apply(conn, schema, spec.migrations_dir)
        if applied:
            log.info("migrations applied: %s", applied)
        clock: Clock = (
            SharedClock(pool, settings.clock_refresh_interval_ms)
            if settings.app_env in ("test", "demo")
            else Clock()
        )
        await clock.start()
        security = KafkaSecurity.from_settings(settings)
        producer = make_producer(
            settings.kafka_bootstrap_servers, f"{spec.name}-producer", security
        )
        await producer.start()
        relay = OutboxRelay(
            pool=pool,
            producer=producer,
            schema=schema,
            batch_size_max=settings.outbox_batch_size_max,
            poll_interval_ms=settings.outbox_poll_interval_ms,
            linger_ms=settings.outbox_linger_ms,
            shards=settings.outbox_shards,
        )
        consumer = EventConsumer(
            service=spec.name,
            pool=pool,
            producer=producer,
            attempts_max=settings.consumer_attempts_max,
            retry_backoff_ms=settings.consumer_retry_backoff_ms,
            transient_backoff_max_ms=settings.consumer_transient_backoff_max_ms,
            batch_size_max=settings.consumer_batch_size_max,
            batch_wait_ms=settings.consumer_batch_wait_ms,
            poll_wait_ms=settings.consumer_poll_wait_ms,
            prefetch_max=settings.consumer_prefetch_max,
            prefetch_gather_ms=settings.consumer_prefetch_gather_ms,
            commit_interval_ms=settings.consumer_commit_interval_ms,
            linger_ms=settings.consumer_linger_ms,
        )
        ctx = ServiceContext(settings, pool, producer, clock, consumer, relay)
        ctx.provide(Lockout(settings.auth_failures_max, settings.auth_failure_window_s))
        broker = KafkaBroker(
            settings.kafka_bootstrap_servers,
            client_id=f"{spec.name}-consumer",
            security=security.faststream(),
            # Topics are provisioned (shared.provision); a service has no CREATE right.
            allow_auto_create_topics=False,
            # FastStream's "Received"/"Processed" line per fetched batch, at DEBUG: at
            # hundreds of fetches a second they cost the decision loop CPU and say nothing
            # the guard's own lines and metrics do not (issue 20's profile).
            log_level=logging.DEBUG,
        )
        if runs_worker:
            if spec.register_handlers is not None:
                spec.register_handlers(consumer, ctx)
            consumer.subscribe(broker)
        if spec.on_start is not None:
            await spec.on_start(ctx)
        if runs_worker and spec.on_worker_start is not None:
            await spec.on_worker_start(ctx)
        await relay.start()
        tasks: list[asyncio.Task[None]] = []
        if runs_worker:
            await broker.start()
            tasks = [
                asyncio.create_task(_run_sweeper(ctx, s), name=f"sweeper-{s.name}")
                for s in spec.sweepers
            ]
        tasks.append(asyncio.create_task(_sample_forever(ctx, broker), name="gauges"))
        app.state.ctx = ctx
        app.state.broker = broker
        freeze_heap()
        log.info(
            "service started",
            extra={"port": settings.port, "env": settings.app_env, "role": settings.role},
        )
        try:
            yield
        finally:
            app.state.ctx = None
            await consumer.stop()
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if runs_worker:
                await broker.stop()
            if runs_worker and spec.on_worker_stop is not None:
                await spec.on_worker_stop(ctx)
            if spec.on_stop is not None:
                await spec.on_stop(ctx)
            await relay.stop()
            await producer.stop()
            await clock.stop()
            await pool.close()

    # The API docs (/docs, /redoc) serve Swagger UI and ReDoc from the package's own files:
    # the district's network is separated from the internet (망분리), where a CDN-loaded
    # page renders blank.
    docs = settings.app_env != "production" or settings.http_api_docs_in_production
    app = (FastAPIOffline if docs else _without_docs)(
        title=spec.title,
        description=spec.description,
        version="1.0.0",
        lifespan=lifespan,
        openapi_tags=list(spec.openapi_tags) or None,
        # No OpenTelemetry: metrics are Prometheus (shared/metrics.py) and logs are JSON
        # lines. Left on, FastAPI asks OTel whether it is configured on every request.
        telemetry=NO_TELEMETRY,
    )
    problems.install(app)
    if spec.webhooks is not None:
        app.webhooks.include_router(spec.webhooks)
    app.add_middleware(
        ServiceMiddleware,
        service=spec.name,
        body_size_max_bytes=settings.http_body_size_max_bytes,
        body_read_timeout_s=settings.http_body_read_timeout_s,
        fast_routes=spec.fast_routes if runs_api else (),
        limits=RequestLimits(
            address_rate_per_s=settings.http_rate_per_address_per_s,
            address_burst=settings.http_rate_per_address_burst,
            credential_rate_per_s=settings.http_rate_per_credential_per_s,
            credential_burst=settings.http_rate_per_credential_burst,
            exempt_addresses=frozenset(
                a.strip() for a in settings.http_rate_exempt_addresses.split(",") if a.strip()
            ),
        ),
    )

    @app.get("/healthz", tags=["ops"], summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": spec.name, "role": settings.role}

    @app.get(
        "/readyz",
        tags=["ops"],
        summary="Postgres and Kafka reachable, migrations applied",
        responses={503: {"description": "not ready; the body says why"}},
    )
    async def readyz(request: Request) -> JSONResponse:
        ctx: ServiceContext[Any] | None = getattr(request.app.state, "ctx", None)
        if ctx is None:
            return JSONResponse({"status": "starting"}, status_code=503)
        reasons = await readiness_problems(ctx, spec.migrations_dir, schema)
        if reasons:
            return JSONResponse({"status": "unavailable", "reasons": reasons}, status_code=503)
        return JSONResponse({"status": "ready"})

    if not settings.metrics_port:  # else on their own port (metrics_listener): 404 here

        @app.get("/metrics", tags=["ops"], summary="Prometheus metrics", include_in_schema=False)
        async def metrics_endpoint() -> Response:
            return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/asyncapi.json", tags=["ops"], summary="AsyncAPI 3.0 document of every topic")
    async def asyncapi_document() -> JSONResponse:
        from shared.asyncapi import document

        return JSONResponse(document())

    if settings.app_env in ("test", "demo"):
        app.include_router(_clock_router())
    if runs_api:
        for router in spec.routers:
            app.include_router(router)
    return app


async def readiness_problems(
    ctx: ServiceContext[Any], migrations_dir: Path, schema: str
) -> list[str]:
    """Why the service is not ready, one sentence each; empty when it is."""
    reasons: list[str] = []
    try:
        async with asyncio.timeout(2):
            async with ctx.pool.acquire() as conn:
                missing = await migrations.pending(conn, schema, migrations_dir)
        if missing:
            reasons.append(f"migrations not applied: {', '.join(missing)}")
    except Exception as exc:
        reasons.append(f"Postgres unreachable: {type(exc).__name__}: {exc}")
    try:
        async with asyncio.timeout(2):
            await ctx.producer.client.fetch_all_metadata()
    except Exception as exc:
        reasons.append(f"Kafka unreachable: {type(exc).__name__}: {exc}")
    return reasons


def serve(app: FastAPI, settings: ServiceSettings) -> None:
    """Run one service process (used by each service's `__main__`).

    What uvicorn bounds here: an idle keep-alive connection is closed after
    `http_keep_alive_timeout_s`; past `http_concurrency_max` connections and tasks a new
    request is answered 503 at once; the listen backlog is bounded. Headers that do not
    arrive within `http_header_read_timeout_s` get a 408 and the connection is closed
    (shared/server.py: uvicorn itself has no such timeout); a body that trickles in is cut
    off by `ServiceMiddleware` (408 after `http_body_read_timeout_s`).

    What is left to the Ingress (nginx): a cap on the size of the header block beyond
    httptools' own (`h11_max_incomplete_event_size` applies to the h11 parser only, not to
    httptools, which these processes use for speed) and per-address connection limits. In
    front of every service nginx sets `client_header_timeout` (e.g. 10 s),
    `client_body_timeout` (10 s), `large_client_header_buffers` (4 8k), `keepalive_timeout`
    and `limit_conn` per address; the settings here are the line for a caller inside the
    cluster."""
    import uvicorn

    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        loop="uvloop",
        http=with_header_timeout(settings.http_header_read_timeout_s),
        timeout_graceful_shutdown=10,
        timeout_keep_alive=settings.http_keep_alive_timeout_s,
        limit_concurrency=settings.http_concurrency_max,
        backlog=min(2048, settings.http_concurrency_max * 2),
    )
