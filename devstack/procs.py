"""Process bookkeeping for the launcher: detached spawns, pid files, liveness, stopping.

The stack must survive the launcher (it is started by one command and stopped by another)
and must recover after `kill -9`, so a pid file alone is never trusted: a pid can be reused
by an unrelated program after a crash. Every check therefore also looks at the process's
command line (Linux `/proc`), and zombies count as dead.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

from devstack.errors import StackError, os_error_to_stack_error

# Children spawned by this interpreter, kept so they can be reaped (no zombies in a long
# pytest process) and so Popen does not warn about still-running children at exit.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}

STOP_GRACE_S = 15.0


def spawn_detached(cmd: Sequence[str], log_path: Path, env: Mapping[str, str], cwd: Path) -> int:
    """Start `cmd` in its own session so it outlives the launcher and its terminal."""
    try:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as log:
            proc = subprocess.Popen(
                list(cmd),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(env),
                cwd=cwd,
                start_new_session=True,
                close_fds=True,
            )
    except OSError as exc:
        raise os_error_to_stack_error(exc, log_path) from None
    _CHILDREN[proc.pid] = proc
    return proc.pid


def _reap(pid: int) -> None:
    """Collect the exit status of our own dead child so it does not linger as a zombie."""
    child = _CHILDREN.get(pid)
    if child is not None:
        if child.poll() is not None:
            _CHILDREN.pop(pid, None)
        return
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def alive(pid: int) -> bool:
    """True if `pid` is a running (not zombie) process."""
    if pid <= 0:
        return False
    _reap(pid)
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # The state letter follows the parenthesised command name, which may contain spaces.
    state = stat.rsplit(")", 1)[-1].split()[0] if ")" in stat else "?"
    return state not in ("Z", "X", "x")


def cmdline(pid: int) -> list[str]:
    """The argv of `pid`, or [] if it is gone or unreadable."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def environ_of(pid: int) -> dict[str, str]:
    """The environment `pid` was started with (root can read any process's)."""
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    result: dict[str, str] = {}
    for item in raw.split(b"\0"):
        key, sep, value = item.decode(errors="replace").partition("=")
        if sep:
            result[key] = value
    return result


def cwd_of(pid: int) -> Path | None:
    try:
        return Path(os.readlink(f"/proc/{pid}/cwd"))
    except OSError:
        return None


def all_pids() -> list[int]:
    return [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]


def find_pids(matches: Callable[[int], bool]) -> list[int]:
    """Live processes for which `matches(pid)` holds (used to adopt lost processes)."""
    own = os.getpid()
    return [pid for pid in all_pids() if pid != own and alive(pid) and matches(pid)]


def read_pid_file(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def write_pid_file(path: Path, pid: int) -> None:
    """Write atomically so a crash never leaves a half-written pid."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(f"{pid}\n")
        tmp.replace(path)
    except OSError as exc:
        raise os_error_to_stack_error(exc, path) from None


def remove_file(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _send(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def wait_gone(pids: Sequence[int], timeout_s: float) -> bool:
    """Wait until none of `pids` is alive; True if they all went in time."""
    deadline = time.monotonic() + timeout_s
    while True:
        if not any(alive(pid) for pid in pids):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def terminate(pid: int, timeout_s: float = STOP_GRACE_S) -> None:
    """SIGTERM, give the process `timeout_s` to shut down cleanly, then SIGKILL."""
    if not alive(pid):
        return
    _send(pid, signal.SIGTERM)
    if wait_gone([pid], timeout_s):
        return
    kill9(pid)


def kill9(pid: int) -> None:
    """SIGKILL and wait until the kernel has removed the process."""
    if not alive(pid):
        return
    _send(pid, signal.SIGKILL)
    wait_gone([pid], 10.0)


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True if something already listens on host:port (a bind test, not a connect)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def tcp_open(host: str, port: int, timeout_s: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def port_owner(port: int) -> str:
    """Best effort "pid N (name)" of the process listening on `port`, for error messages."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if (
                len(fields) > 9
                and fields[3] == "0A"
                and int(fields[1].rsplit(":", 1)[1], 16) == port
            ):
                inodes.add(fields[9])
    if not inodes:
        return ""
    wanted = {f"socket:[{inode}]" for inode in inodes}
    for pid in all_pids():
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target in wanted:
                try:
                    name = Path(f"/proc/{pid}/comm").read_text().strip()
                except OSError:
                    name = "?"
                return f"pid {pid} ({name})"
    return ""


# A process killed a moment ago may still hold its listening socket briefly: a restart
# right after a crash waits this long for the port before calling it taken.
PORT_RELEASE_GRACE_S = 3.0


def wait_port_free(port: int, timeout_s: float = PORT_RELEASE_GRACE_S) -> bool:
    """True once nothing listens on `port` (polled), False if still taken after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while port_in_use(port):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def require_free_port(port: int, env_var: str, what: str) -> None:
    """Fail with a sentence naming the port and the variable that moves it."""
    if not wait_port_free(port):
        owner = port_owner(port)
        by = f" by {owner}" if owner else ""
        raise StackError(
            f"Port {port} ({what}) on 127.0.0.1 is already in use{by}; stop that program "
            f"or set {env_var} to a free port."
        )


def tail(path: Path, lines: int = 30) -> str:
    """The last `lines` lines of a log file, for failure messages."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            text = handle.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Serialise launchers working on the same directory (two `up`s at once)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = path.open("a")
    except OSError as exc:
        raise os_error_to_stack_error(exc, path) from None
    with handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
