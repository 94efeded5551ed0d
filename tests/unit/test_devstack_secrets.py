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


def test_only_the_matcher_gets_the_partner_api_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The partner's pull-API token is the matcher's alone, like the finance token is the
    allowance's: the registry and the allowance are started without it."""
    config = StackConfig.from_environ(tmp_path, {"PATH": "/usr/bin"})
    config.logs_dir.mkdir(parents=True)
    stack_env = {
        **{f"{s.upper()}_DATABASE_URL": f"postgresql://{s}:{s}-pg@h/db" for s in SERVICES},
        "PARTNER_API_TOKEN": "pk_0123456789abcdef_partner-secret",
        "FINANCE_TOKEN": "finance-secret",
    }
    seen: dict[str, dict[str, str]] = {}

    def spawn(cmd: list[str], log: Path, env: dict[str, str], cwd: Path) -> int:
        seen[cmd[-1]] = env
        return 4242

    monkeypatch.setattr(services.procs, "spawn_detached", spawn)
    monkeypatch.setattr(services.procs, "write_pid_file", lambda path, pid: None)
    for name in SERVICES:
        services.start(config, name, stack_env)
    assert seen["matcher"]["PARTNER_API_TOKEN"] == stack_env["PARTNER_API_TOKEN"]
    assert "FINANCE_TOKEN" not in seen["matcher"]
    for other in ("registry", "allowance"):
        assert "PARTNER_API_TOKEN" not in seen[other]
        assert "partner-secret" not in "\n".join(seen[other].values())


def test_the_stack_env_holds_a_partner_token_the_matcher_accepts(tmp_path: Path) -> None:
    """`.run/stack.env` gets a fresh PARTNER_API_TOKEN shaped as the matcher requires
    (`pk_<16 hex>_<secret>`), kept across restarts like every other secret."""
    from matcher.settings import MatcherSettings

    from devstack.envfile import build_env

    config = StackConfig.from_environ(tmp_path, {"PATH": "/usr/bin"})
    first = build_env(config, "127.0.0.1:9092", "postgresql://postgres@h/db", {})
    token = first["PARTNER_API_TOKEN"]
    assert token.startswith("pk_")
    assert MatcherSettings(partner_api_token=token).partner_api_token.get_secret_value() == token
    again = build_env(config, "127.0.0.1:9092", "postgresql://postgres@h/db", first)
    assert again["PARTNER_API_TOKEN"] == token
    with pytest.raises(ValueError, match="PARTNER_API_TOKEN"):
        MatcherSettings(partner_api_token="not-a-partner-token")


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
