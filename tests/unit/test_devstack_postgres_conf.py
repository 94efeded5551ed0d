"""The local Postgres's own settings: per-statement figures and commit times only when
asked for (the bench's private stack), since they change what every stack runs."""

from __future__ import annotations

from pathlib import Path

from devstack.config import StackConfig
from devstack.postgres import _stack_conf


def test_statement_figures_and_commit_times_are_kept_only_when_asked_for(tmp_path: Path) -> None:
    plain = _stack_conf(StackConfig.from_environ(tmp_path, {"PATH": "/usr/bin"}))
    asked = _stack_conf(
        StackConfig.from_environ(tmp_path, {"PATH": "/usr/bin", "POSTGRES_STAT_STATEMENTS": "1"})
    )
    assert "shared_preload_libraries" not in plain
    assert "shared_preload_libraries = 'pg_stat_statements'\n" in asked
    assert "track_commit_timestamp = on\n" in asked
    # Everything else stays as it was.
    assert set(plain.splitlines()) <= set(asked.splitlines())
