"""Each service process of the local stack gets only its own Kafka and Postgres secrets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from devstack import services
from devstack.config import SERVICES, StackConfig


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
