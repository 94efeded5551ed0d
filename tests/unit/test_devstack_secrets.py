"""Each service process of the local stack gets only its own Kafka and Postgres secrets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from devstack import services
from devstack.config import SERVICES, StackConfig
from shared.payee_seal import new_private_key_spec, public_key_spec


def test_a_service_gets_its_own_kafka_user_and_no_other_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = StackConfig.from_environ(tmp_path, {"PATH": "/usr/bin"})
    config.logs_dir.mkdir(parents=True)
    stack_env = {
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_SASL_USERNAME": "admin",
        "KAFKA_SASL_PASSWORD": "admin-secret",
        **{f"{s.upper()}_KAFKA_PASSWORD": f"{s}-kafka-secret" for s in SERVICES},
        **{f"{s.upper()}_DATABASE_URL": f"postgresql://{s}:{s}-pg@h/db" for s in SERVICES},
    }
    seen: dict[str, Any] = {}

    def spawn(cmd: list[str], log: Path, env: dict[str, str], cwd: Path) -> int:
        seen.update(env)
        return 4242

    monkeypatch.setattr(services.procs, "spawn_detached", spawn)
    monkeypatch.setattr(services.procs, "write_pid_file", lambda path, pid: None)
    services.start(config, "matcher", stack_env)
    assert seen["KAFKA_SASL_USERNAME"] == "matcher"
    assert seen["KAFKA_SASL_PASSWORD"] == "matcher-kafka-secret"
    assert seen["DATABASE_URL"] == stack_env["MATCHER_DATABASE_URL"]
    values = "\n".join(str(v) for v in seen.values())
    assert "admin-secret" not in values
    for other in ("registry", "allowance"):
        assert f"{other}-kafka-secret" not in values
        assert f"{other}-pg" not in values


def _started_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, stack_env: dict[str, str]
) -> dict[str, Any]:
    config = StackConfig.from_environ(tmp_path, {"PATH": "/usr/bin"})
    config.logs_dir.mkdir(parents=True, exist_ok=True)
    seen: dict[str, Any] = {}

    def spawn(cmd: list[str], log: Path, env: dict[str, str], cwd: Path) -> int:
        seen.update(env)
        return 4242

    monkeypatch.setattr(services.procs, "spawn_detached", spawn)
    monkeypatch.setattr(services.procs, "write_pid_file", lambda path, pid: None)
    services.start(config, name, stack_env)
    return seen


def test_the_payee_seal_private_key_reaches_the_allowance_alone_and_the_public_key_the_matcher(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Decision 0014: bank details from the partner are sealed by the matcher with the
    public key and opened by the allowance with the private key; no other process holds
    either, and the matcher never holds the private key."""
    private = new_private_key_spec()
    stack_env = {
        **{f"{s.upper()}_DATABASE_URL": f"postgresql://{s}:{s}-pg@h/db" for s in SERVICES},
        "ALLOWANCE_PAYEE_KEYS": "k1:aes",
        "ALLOWANCE_PAYEE_SEAL_KEYS": private,
        "PAYEE_SEAL_PUBLIC_KEY": public_key_spec(private),
    }
    for name in SERVICES:
        seen = _started_env(tmp_path, monkeypatch, name, stack_env)
        assert ("ALLOWANCE_PAYEE_SEAL_KEYS" in seen) == (name == "allowance"), name
        assert ("ALLOWANCE_PAYEE_KEYS" in seen) == (name == "allowance"), name
        assert ("PAYEE_SEAL_PUBLIC_KEY" in seen) == (name == "matcher"), name
        values = "\n".join(str(v) for v in seen.values())
        if name != "allowance":
            assert private.split(":", 1)[1] not in values, name
