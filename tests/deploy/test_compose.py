"""docker-compose.yml is valid and describes the whole system (no Docker engine needed)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

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


def test_prometheus_scrapes_each_service_on_its_metrics_port() -> None:
    """Each service in compose serves /metrics on METRICS_PORT, which is not published to
    the host, and deploy/prometheus/prometheus.yml scrapes exactly `<service>:<that port>`."""
    env_file = str(ROOT / "deploy" / "docker" / "example.env")
    rendered = _compose("--env-file", env_file, "config")
    assert rendered.returncode == 0, rendered.stderr
    services = yaml.safe_load(rendered.stdout)["services"]
    prometheus = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    targets = {
        job["job_name"]: [t for c in job["static_configs"] for t in c["targets"]]
        for job in prometheus["scrape_configs"]
    }
    for name in ("registry", "matcher", "allowance"):
        port = services[name]["environment"]["METRICS_PORT"]
        assert port != services[name]["environment"]["PORT"]
        assert targets[name] == [f"{name}:{port}"]
        published = [str(p.get("target")) for p in services[name].get("ports", [])]
        assert port not in published, name
