"""`python -m devstack up|down|status|kill9`: the local stack for people and Makefiles.

Provisioning servers someone else runs (containers, Kubernetes) is not here but in
`python -m shared.provision`, which ships in the image; this launcher does not.

Exit codes: 0 done (or, for `status`, everything that should run runs); 2 a problem the
developer can fix, stated in one sentence on stderr, never a stack trace; 3 `status` found
a component stopped.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Sequence

from devstack import COMPONENTS, down, kill9, status, up
from devstack.errors import StackError, os_error_to_stack_error

EXIT_OK = 0
EXIT_ERROR = 2
EXIT_NOT_RUNNING = 3


def _say(line: str) -> None:
    """Progress lines; a closed stdout (`up | head`) must not abort a half-done `up`."""
    with contextlib.suppress(OSError):
        print(line, flush=True)


def _parser() -> argparse.ArgumentParser:
    # --run-dir is accepted before or after the command (`--run-dir X up` or `up --run-dir X`).
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--run-dir",
        default=argparse.SUPPRESS,
        help="where data, logs and stack.env live (default: $RUN_DIR or .run)",
    )
    parser = argparse.ArgumentParser(
        prog="python -m devstack",
        description="Local Kafka + PostgreSQL (+ the three services) without Docker.",
        parents=[common],
    )
    commands = parser.add_subparsers(dest="command", required=True)
    up_cmd = commands.add_parser(
        "up", parents=[common], help="start what is not running and wait until ready"
    )
    up_cmd.add_argument(
        "--no-services",
        action="store_true",
        help="start only Kafka and PostgreSQL (with topics and provisioning)",
    )
    down_cmd = commands.add_parser(
        "down", parents=[common], help="stop everything this run dir started"
    )
    down_cmd.add_argument(
        "--wipe", action="store_true", help="also delete the data (not the Kafka jar cache)"
    )
    commands.add_parser(
        "status", parents=[common], help="show each component; exit 3 if one is stopped"
    )
    kill_cmd = commands.add_parser(
        "kill9", parents=[common], help="SIGKILL one component (crash tests)"
    )
    kill_cmd.add_argument("component", choices=COMPONENTS)
    return parser


def _status(run_dir: str | None) -> int:
    rows = status(run_dir)
    for row in rows:
        pid = f"pid {row.pid}" if row.pid else "-"
        print(f"{row.name:<10} {row.state:<21} {pid:<11} {row.address}")
    return EXIT_OK if all(row.ok for row in rows) else EXIT_NOT_RUNNING


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    run_dir: str | None = getattr(args, "run_dir", None)
    try:
        if args.command == "up":
            up(run_dir, services=not args.no_services, say=_say)
            return EXIT_OK
        if args.command == "down":
            down(run_dir, wipe=args.wipe, say=_say)
            return EXIT_OK
        if args.command == "status":
            return _status(run_dir)
        kill9(args.component, run_dir)
        return EXIT_OK
    except StackError as exc:
        if exc.details:
            print(exc.details, file=sys.stderr)
        print(f"error: {exc.message}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as exc:
        error = os_error_to_stack_error(exc)
        print(f"error: {error.message}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
