"""Apply numbered SQL migrations to one service's schema: once each, in order, under a lock.

Files are `NNNN_name.sql`. The shared ones (`shared/migrations/`: outbox, processed events)
come first, recorded as `shared/NNNN`; then the service's own, recorded as `NNNN`. A file
that changed after it was applied is refused (its checksum no longer matches): migrations
are history, and a fix is a new file.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

SHARED_DIR = Path(__file__).parent / "migrations"
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


class MigrationError(RuntimeError):
    """A migration file is malformed or was edited after it was applied."""


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def discover(directory: Path, prefix: str = "") -> list[Migration]:
    """The migrations in `directory`, ordered by number; refuses gaps in naming."""
    found: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if match is None:
            raise MigrationError(f"{path}: migration files are named NNNN_lower_case.sql")
        found.append(Migration(prefix + match.group(1), path.name, path.read_text("utf-8")))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"{directory}: two migrations share a number")
    return found


def all_migrations(service_dir: Path) -> list[Migration]:
    return discover(SHARED_DIR, "shared/") + discover(service_dir)


async def apply(conn: asyncpg.Connection, schema: str, service_dir: Path) -> list[str]:
    """Apply what is missing to `schema`; returns the versions applied now."""
    migrations = all_migrations(service_dir)
    applied_now: list[str] = []
    lock_key = f"migrations:{schema}"
    await conn.execute("SELECT pg_advisory_lock(hashtext($1))", lock_key)
    try:
        await conn.execute(f'SET search_path TO "{schema}"')
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version    text PRIMARY KEY,
                   name       text NOT NULL,
                   checksum   text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        rows = await conn.fetch("SELECT version, checksum FROM schema_migrations")
        done = {r["version"]: r["checksum"] for r in rows}
        for migration in migrations:
            if migration.version in done:
                if done[migration.version] != migration.checksum:
                    raise MigrationError(
                        f"{schema}: migration {migration.name} changed after it was applied; "
                        "add a new migration instead of editing an applied one"
                    )
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
            applied_now.append(migration.version)
    finally:
        await conn.execute("SELECT pg_advisory_unlock(hashtext($1))", lock_key)
    return applied_now


async def pending(conn: asyncpg.Connection, schema: str, service_dir: Path) -> list[str]:
    """Versions not applied yet (readiness says 503 while any remain)."""
    exists = await conn.fetchval(
        "SELECT to_regclass($1) IS NOT NULL", f'"{schema}".schema_migrations'
    )
    wanted = [m.version for m in all_migrations(service_dir)]
    if not exists:
        return wanted
    rows = await conn.fetch(f'SELECT version FROM "{schema}".schema_migrations')
    have = {r["version"] for r in rows}
    return [v for v in wanted if v not in have]
