"""docker-compose.yml is valid and describes the whole system (no Docker engine needed)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _compose(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("docker-compose")
    if exe is None:
        pytest.fail("docker-compose (Debian package) missing: `make setup` installs it")
    return subprocess.run(
        [exe, "-f", str(ROOT / "docker-compose.yml"), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin"},
    )


def test_compose_config_is_valid_with_the_example_secrets() -> None:
    """`docker-compose config -q` passes given every required secret, and lists Kafka,
    Postgres, the provisioning job, the three services and Prometheus."""
    env_file = str(ROOT / "deploy" / "docker" / "example.env")
    assert _compose("--env-file", env_file, "config", "-q").returncode == 0
    services = _compose("--env-file", env_file, "config", "--services").stdout.split()
    assert set(services) == {
        "kafka",
        "postgres",
        "provision",
        "registry",
        "matcher",
        "allowance",
        "prometheus",
    }


def test_compose_refuses_to_start_without_secrets() -> None:
    """No secret has a default in the file: a missing one is an error naming it."""
    result = _compose("config", "-q")
    assert result.returncode != 0
    assert "set " in result.stderr
