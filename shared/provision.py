"""Database, roles, schemas and Kafka topics for the three services; idempotent.

Production code: the Kubernetes Job and the compose `provision` service run
`python -m shared.provision` against servers someone else runs, and the local launcher
(`devstack`) calls the same functions, so local and deployed systems get the same grants.

Each service owns one schema and logs in as its own role, and nothing else is granted: a
service cannot read (let alone write) another service's tables, so the only way data moves
between services is through Kafka, as the architecture says. The one shared object is the
test/demo clock (`clock.shared_clock`), owned by the admin and writable by every service.

Exit codes of `python -m shared.provision`: 0 provisioned; 2 a problem the operator can fix
(a missing variable, a refused topic), said in one sentence on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from shared.kafka import KafkaSecurity
from shared.topics import PARTITIONS_DEFAULT, TopicSpec, partitions_from, topic_specs

SERVICES: tuple[str, ...] = ("registry", "matcher", "allowance")
DATABASE_NAME = "gwangsan"
TOPIC_ALREADY_EXISTS = 36  # Kafka protocol error code

EXIT_OK = 0
EXIT_ERROR = 2


class ProvisionError(Exception):
    """Kafka or Postgres refused something; the message is one sentence saying what."""


CLOCK_SCHEMA = "clock"


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    # standard_conforming_strings is on (the default since 9.1): only quotes need doubling.
    return "'" + value.replace("'", "''") + "'"


def database_of(url: str) -> str:
    """The database a URL names, `gwangsan` if it names none."""
    path = urlsplit(url).path.lstrip("/")
    return path or DATABASE_NAME


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


def url_password(url: str) -> str | None:
    try:
        password = urlsplit(url).password
    except ValueError:
        return None
    return unquote(password) if password else None


def url_username(url: str) -> str | None:
    try:
        username = urlsplit(url).username
    except ValueError:
        return None
    return unquote(username) if username else None


def role_credentials(env: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """service -> (role, password), read from the `<SERVICE>_DATABASE_URL` values."""
    result: dict[str, tuple[str, str]] = {}
    for service in SERVICES:
        url = env[f"{service.upper()}_DATABASE_URL"]
        result[service] = (url_username(url) or service, url_password(url) or "")
    return result


async def _connect(url: str) -> Any:
    import asyncpg  # type: ignore[import-untyped, unused-ignore]

    return await asyncpg.connect(url, timeout=10)


async def ensure_database(admin_url: str) -> str:
    """Create the database named by the admin URL if missing; returns its name."""
    database = database_of(admin_url)
    conn = await _connect(with_database(admin_url, "postgres"))
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
        if not exists:
            import asyncpg  # type: ignore[import-untyped, unused-ignore]

            # Another launcher may create it between our check and our create.
            with contextlib.suppress(asyncpg.DuplicateDatabaseError):
                await conn.execute(f"CREATE DATABASE {quote_ident(database)} ENCODING 'UTF8'")
    finally:
        await conn.close()
    return database


async def provision(admin_url: str, env: Mapping[str, str]) -> None:
    """Database, one role + schema per service, privilege hygiene and the shared clock.

    `env` holds the `<SERVICE>_DATABASE_URL` values whose user and password the roles get;
    re-running keeps everything and only re-applies passwords and grants.
    """
    database = await ensure_database(admin_url)
    credentials = role_credentials(env)
    conn = await _connect(with_database(admin_url, database))
    try:
        # Roles are cluster-wide; an advisory lock keeps two launchers from racing here.
        await conn.execute("SELECT pg_advisory_lock(7242001)")
        try:
            async with conn.transaction():
                await _provision(conn, database, credentials)
        finally:
            await conn.execute("SELECT pg_advisory_unlock(7242001)")
    finally:
        await conn.close()


async def _provision(conn: Any, database: str, credentials: Mapping[str, tuple[str, str]]) -> None:
    db = quote_ident(database)
    roles = [role for role, _ in credentials.values()]
    role_list = ", ".join(quote_ident(role) for role in roles)

    for service, (role, password) in credentials.items():
        exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role)
        verb = "ALTER" if exists else "CREATE"
        secret = f" PASSWORD {quote_literal(password)}" if password else ""
        await conn.execute(
            f"{verb} ROLE {quote_ident(role)} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE"
            f"{secret}"
        )
        schema = quote_ident(service)
        await conn.execute(
            f"CREATE SCHEMA IF NOT EXISTS {schema} AUTHORIZATION {quote_ident(role)}"
        )
        await conn.execute(f"ALTER SCHEMA {schema} OWNER TO {quote_ident(role)}")
        await conn.execute(f"REVOKE ALL ON SCHEMA {schema} FROM PUBLIC")
        # Unqualified names resolve in the service's own schema (and nowhere else).
        await conn.execute(
            f"ALTER ROLE {quote_ident(role)} IN DATABASE {db} SET search_path = {schema}"
        )

    # Nobody gets anything by default: not the database, not the public schema. Then each
    # service role gets back only what it needs to connect and work in its own schema.
    await conn.execute(f"REVOKE ALL ON DATABASE {db} FROM PUBLIC")
    await conn.execute(f"GRANT CONNECT, TEMPORARY ON DATABASE {db} TO {role_list}")
    await conn.execute("REVOKE ALL ON SCHEMA public FROM PUBLIC")

    await create_shared_clock(conn, roles)


async def create_shared_clock(conn: Any, roles: Sequence[str] = ()) -> None:
    """The test/demo clock's table (`clock.shared_clock`), readable and writable by `roles`.
    Every database the services migrate into has it (it stays empty in production): the
    matcher's migrations read it in SQL functions, which Postgres checks when created."""
    clock = quote_ident(CLOCK_SCHEMA)
    await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {clock}")
    await conn.execute(f"REVOKE ALL ON SCHEMA {clock} FROM PUBLIC")
    await conn.execute(
        f"""
        CREATE TABLE IF NOT EXISTS {clock}.shared_clock (
            id boolean PRIMARY KEY DEFAULT true CHECK (id),
            now_at timestamptz NOT NULL,
            set_at timestamptz NOT NULL
        )
        """
    )
    await conn.execute(f"REVOKE ALL ON {clock}.shared_clock FROM PUBLIC")
    if roles:
        role_list = ", ".join(quote_ident(role) for role in roles)
        await conn.execute(f"GRANT USAGE ON SCHEMA {clock} TO {role_list}")
        await conn.execute(f"GRANT SELECT, INSERT, UPDATE ON {clock}.shared_clock TO {role_list}")


def admin_client(
    bootstrap_servers: str, security: KafkaSecurity | None = None, timeout_s: float = 30.0
) -> Any:
    """An aiokafka admin client (not started) with the provisioning user's security."""
    from aiokafka.admin import AIOKafkaAdminClient

    return AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers,
        request_timeout_ms=int(timeout_s * 1000),
        **(security or KafkaSecurity()).client_kwargs(),
    )


@dataclass(frozen=True)
class TopicsOutcome:
    """What `ensure_topics` did: topics created, topics grown to the wanted partitions, and
    topics left with fewer partitions than wanted (not asked to grow)."""

    created: list[str]
    grown: list[str]
    short: dict[str, int]  # topic -> the partitions it has
    partitions: int

    def short_warning(self) -> str | None:
        """One sentence for the operator when topics have fewer partitions than wanted."""
        if not self.short:
            return None
        have = sorted(set(self.short.values()))
        return (
            f"{len(self.short)} topics have {', '.join(map(str, have))} partitions, fewer than"
            f" KAFKA_PARTITIONS={self.partitions}; left as they are (growing remaps keys to"
            " partitions): to grow them follow docs/operations.md, 'Raising the partitions'"
            " (`python -m shared.provision --grow-partitions`)."
        )


async def ensure_topics(
    bootstrap_servers: str,
    timeout_s: float = 30.0,
    security: KafkaSecurity | None = None,
    *,
    partitions: int = PARTITIONS_DEFAULT,
    grow: bool = False,
    specs: Sequence[TopicSpec] | None = None,
) -> TopicsOutcome:
    """Create every topic of `specs` (by default every topic of `shared.topics` laid out
    with `partitions`) that does not exist yet, then wait until each of their partitions
    has a leader, so a producer can write at once (also right after a crash restart).

    An existing topic with fewer partitions than wanted is grown only with `grow` (Kafka
    adds partitions and never removes any, and a key's partition is its hash modulo the
    count, so growing sends keys to new partitions: docs/operations.md); otherwise it is
    reported in `short`. One with more is left alone (it cannot shrink)."""
    from aiokafka.admin import NewPartitions, NewTopic

    specs = list(topic_specs(partitions) if specs is None else specs)
    admin = admin_client(bootstrap_servers, security, timeout_s)
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        missing = [spec for spec in specs if spec.name not in existing]
        if missing:
            cluster: dict[str, Any] = await admin.describe_cluster()
            # One broker locally; on an external cluster up to 3 replicas.
            replication = max(1, min(3, len(cluster.get("brokers") or [])))
            response = await admin.create_topics(
                [
                    NewTopic(
                        name=spec.name,
                        num_partitions=spec.partitions,
                        replication_factor=replication,
                        topic_configs=dict(spec.config),
                    )
                    for spec in missing
                ]
            )
            failures = []
            for entry in response.topic_errors:
                name, code = entry[0], entry[1]
                message = entry[2] if len(entry) > 2 else ""
                if code not in (0, TOPIC_ALREADY_EXISTS):  # another launcher won a race
                    failures.append(f"{name} (error {code}: {message})")
            if failures:
                raise ProvisionError(f"Kafka refused to create topics: {', '.join(failures)}.")
        names = [spec.name for spec in specs]
        await _wait_for_leaders(admin, names, timeout_s)
        counts = await _partition_counts(admin, names)
        short = {s.name: counts[s.name] for s in specs if counts[s.name] < s.partitions}
        grown: list[str] = []
        if short and grow:
            try:
                await admin.create_partitions(
                    {
                        s.name: NewPartitions(total_count=s.partitions)
                        for s in specs
                        if s.name in short
                    }
                )
            except Exception as exc:  # a Kafka error class per code: said in one sentence
                raise ProvisionError(
                    f"Kafka refused to grow the topics to {partitions} partitions"
                    f" ({type(exc).__name__}: {exc})."
                ) from None
            wanted = {t.name: t.partitions for t in specs if t.name in short}
            await _wait_for_leaders(admin, sorted(short), timeout_s, wanted)
            grown, short = sorted(short), {}
        return TopicsOutcome([s.name for s in missing], grown, short, partitions)
    finally:
        with contextlib.suppress(Exception):
            await admin.close()


async def _partition_counts(admin: Any, names: list[str]) -> dict[str, int]:
    described: list[dict[str, Any]] = await admin.describe_topics(names)
    return {topic["topic"]: len(topic["partitions"]) for topic in described}


# Kafka protocol codes (org.apache.kafka.common.acl / resource).
_RESOURCE_TYPES = {"topic": 2, "group": 3, "cluster": 4}
_PATTERN_TYPES = {"literal": 3, "prefixed": 4}
_OPERATIONS = {"Read": 3, "Write": 4, "Describe": 8}
_ALLOW = 3
SECURITY_DISABLED = 54  # no authorizer configured: a plaintext dev Kafka


async def ensure_acls(
    bootstrap_servers: str, security: KafkaSecurity | None = None, timeout_s: float = 30.0
) -> int:
    """Add the ALLOW rules of shared.topics.ACCESS for every service's user (creating an
    existing rule is a no-op in Kafka, so this is idempotent). Rules no longer in the table
    are not removed here; on Kubernetes the User Operator owns them (deploy/k8s).

    Returns how many rules were sent; 0 when the cluster has no authorizer."""
    from aiokafka.protocol.admin import CreateAclsRequest

    from shared.topics import ACCESS, acl_rules

    admin = admin_client(bootstrap_servers, security, timeout_s)
    sent = 0
    try:
        await admin.start()
        for service in ACCESS:
            for rule in acl_rules(service):
                request = CreateAclsRequest(
                    _RESOURCE_TYPES[rule.resource_type],
                    rule.name,
                    _PATTERN_TYPES[rule.pattern],
                    rule.principal,
                    "*",
                    _OPERATIONS[rule.operation],
                    _ALLOW,
                )
                response = await admin._send_request(request)
                for entry in response.creation_responses:
                    code, message = entry[0], entry[1]
                    if code == SECURITY_DISABLED:
                        return 0
                    if code != 0:
                        raise ProvisionError(
                            f"Kafka refused the ACL {rule.operation} on {rule.resource_type} "
                            f"{rule.name} for {rule.principal} (error {code}: {message})."
                        )
                sent += 1
    finally:
        with contextlib.suppress(Exception):
            await admin.close()
    return sent


async def _wait_for_leaders(
    admin: Any, names: list[str], timeout_s: float, counts: dict[str, int] | None = None
) -> None:
    """Until every partition of `names` has a leader (and, for those in `counts`, the
    topic shows at least that many partitions: a grown topic's new ones appear a moment
    after the controller agreed)."""
    deadline = time.monotonic() + timeout_s
    wanted = counts or {}
    while True:
        described: list[dict[str, Any]] = await admin.describe_topics(names)
        leaderless = sorted(
            topic["topic"]
            for topic in described
            if topic["error_code"] != 0
            or not topic["partitions"]
            or len(topic["partitions"]) < wanted.get(topic["topic"], 1)
            or any(partition["leader"] < 0 for partition in topic["partitions"])
        )
        if not leaderless:
            return
        if time.monotonic() >= deadline:
            raise ProvisionError(
                f"Kafka topics without a partition leader after {timeout_s:.0f} s: "
                f"{', '.join(leaderless)}."
            )
        await asyncio.sleep(0.2)


# --- python -m shared.provision --------------------------------------------------------------

REQUIRED_ENV: tuple[str, ...] = (
    "DATABASE_URL",
    "KAFKA_BOOTSTRAP_SERVERS",
    *(f"{service.upper()}_DATABASE_URL" for service in SERVICES),
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m shared.provision",
        description="Provision an existing Postgres and Kafka (database, roles, schemas, "
        "clock table, topics with KAFKA_PARTITIONS partitions, and with "
        "KAFKA_SECURITY_PROTOCOL=SASL_* the services' ACLs) from DATABASE_URL, "
        "<SERVICE>_DATABASE_URL, KAFKA_BOOTSTRAP_SERVERS and the KAFKA_SASL_*/KAFKA_SSL_CAFILE "
        "of an admin user: for containers and Kubernetes jobs.",
    )
    parser.add_argument(
        "--grow-partitions",
        action="store_true",
        help="grow existing source topics with fewer partitions than KAFKA_PARTITIONS "
        "(remaps keys to partitions: follow docs/operations.md, 'Raising the partitions')",
    )
    return parser


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Provision the servers the environment names; errors are one line, never a trace."""
    args = _parser().parse_args(argv)
    env = os.environ if environ is None else environ
    missing = [name for name in REQUIRED_ENV if not env.get(name)]
    outcome: TopicsOutcome | None = None
    try:
        if missing:
            raise ProvisionError(
                f"provision needs these environment variables: {', '.join(missing)}."
            )
        try:
            partitions = partitions_from(env)
        except ValueError as exc:
            raise ProvisionError(str(exc)) from None

        async def run() -> TopicsOutcome:
            await provision(env["DATABASE_URL"], env)
            security = KafkaSecurity.from_env(env)
            done = await ensure_topics(
                env["KAFKA_BOOTSTRAP_SERVERS"],
                security=security,
                partitions=partitions,
                grow=args.grow_partitions,
            )
            if security.uses_sasl:
                await ensure_acls(env["KAFKA_BOOTSTRAP_SERVERS"], security)
            return done

        outcome = asyncio.run(run())
    except ProvisionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as exc:  # e.g. the server refused the connection
        print(f"error: The operating system refused: {exc.strerror or exc}.", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    with contextlib.suppress(OSError):
        print("provisioned Postgres roles and schemas and Kafka topics", flush=True)
        if outcome.grown:
            print(f"grew {len(outcome.grown)} topics to {outcome.partitions} partitions")
        warning = outcome.short_warning()
        if warning:
            print(f"warning: {warning}", file=sys.stderr, flush=True)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
