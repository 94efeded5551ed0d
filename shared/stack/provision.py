"""Database, roles and schemas for the three services; idempotent, also for an external Postgres.

Each service owns one schema and logs in as its own role, and nothing else is granted: a
service cannot read (let alone write) another service's tables, so the only way data moves
between services is through Kafka, as the architecture says. The one shared object is the
test/demo clock (`clock.shared_clock`), owned by the admin and writable by every service.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from shared.stack.config import DATABASE_NAME, SERVICES
from shared.stack.envfile import url_password, url_username

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
    await conn.execute(f"GRANT USAGE ON SCHEMA {clock} TO {role_list}")
    await conn.execute(f"GRANT SELECT, INSERT, UPDATE ON {clock}.shared_clock TO {role_list}")
