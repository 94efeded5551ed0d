"""Writing `<run dir>/stack.env`: the addresses and secrets every service, test and tool reads.

Clients read it with `shared.stackenv`; only the launcher writes it. Secrets are generated
once and kept across `up`s (the database roles are created with those passwords, and
partners are configured with those webhook secrets), so the file is read before it is
rewritten. Any value already set in the environment wins, which is how an operator points
the stack at external Kafka/Postgres or fixes a token for a demo. The file holds secrets,
so it is written with mode 600.
"""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

from devstack.config import LOCALHOST, SERVICES, StackConfig
from devstack.errors import os_error_to_stack_error
from shared.auth import PARTNER_KEY_PREFIX, issue_key
from shared.payee_seal import new_private_key_spec, public_key_spec
from shared.provision import url_password
from shared.stackenv import KEYS
from shared.topics import ADMIN_USER

PARTNER_NOTIFY_URL_DEFAULT = "http://127.0.0.1:8009/notifications"
APP_ENV_DEFAULT = "demo"


def new_token() -> str:
    return secrets.token_urlsafe(32)


def new_webhook_secret() -> str:
    """A Standard Webhooks secret: `whsec_` + base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def new_partner_token() -> str:
    """A partner API token for the matcher's pull API: `pk_<key id>_<secret>`."""
    return issue_key(PARTNER_KEY_PREFIX).secret


def new_payee_key() -> str:
    """An AES-256-GCM key for payee bank details, as `ALLOWANCE_PAYEE_KEYS` takes it."""
    return "k1:" + base64.b64encode(secrets.token_bytes(32)).decode()


def write_env_file(path: Path, values: Mapping[str, str]) -> None:
    """Write atomically with mode 600: the file is created private, never chmod-ed later."""
    body = "".join(f"{key}={value}\n" for key, value in values.items())
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            os.fchmod(handle.fileno(), 0o600)  # the umask could have narrowed it further
            handle.write(body)
        tmp.replace(path)
    except OSError as exc:
        raise os_error_to_stack_error(exc, path) from None


def with_credentials(url: str, user: str, password: str | None) -> str:
    """`url` with its user and password replaced, host, port, database and query kept."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = quote(user, safe="")
    if password:
        netloc += ":" + quote(password, safe="")
    netloc += "@" + host
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def local_admin_url(config: StackConfig, database: str) -> str:
    return f"postgresql://postgres@{LOCALHOST}:{config.postgres_port}/{database}"


def build_env(
    config: StackConfig,
    kafka_bootstrap: str,
    admin_url: str,
    existing: Mapping[str, str],
    external_kafka: bool = False,
) -> dict[str, str]:
    """Every key of stack.env: environment first, then kept secrets, then new or default.

    The local Kafka runs SASL_SSL unless KAFKA_SECURITY_PROTOCOL=PLAINTEXT; an external
    one (KAFKA_BOOTSTRAP_SERVERS) is taken as plaintext unless the variables say otherwise.
    """
    env = config.environ

    def secret(key: str, make: str) -> str:
        return env.get(key) or existing.get(key) or make

    protocol = env.get("KAFKA_SECURITY_PROTOCOL") or ("PLAINTEXT" if external_kafka else "SASL_SSL")
    values: dict[str, str] = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "KAFKA_SECURITY_PROTOCOL": protocol,
        "KAFKA_SASL_MECHANISM": env.get("KAFKA_SASL_MECHANISM") or "SCRAM-SHA-512",
        "KAFKA_SSL_CAFILE": env.get("KAFKA_SSL_CAFILE")
        or ("" if external_kafka else str(config.kafka_dir / "tls" / "ca.pem")),
        "KAFKA_SASL_USERNAME": env.get("KAFKA_SASL_USERNAME") or ADMIN_USER,
        "KAFKA_SASL_PASSWORD": secret("KAFKA_SASL_PASSWORD", new_token()),
        **{
            f"{name.upper()}_KAFKA_PASSWORD": secret(f"{name.upper()}_KAFKA_PASSWORD", new_token())
            for name in SERVICES
        },
        "DATABASE_URL": admin_url,
    }
    for name in SERVICES:
        key = f"{name.upper()}_DATABASE_URL"
        given = env.get(key)
        if given:
            values[key] = given
            continue
        password = url_password(existing.get(key, "")) or new_token()
        values[key] = with_credentials(admin_url, name, password)
    for name in SERVICES:
        key = f"{name.upper()}_URL"
        values[key] = env.get(key) or f"http://{LOCALHOST}:{config.service_ports[name]}"
    values["ADMIN_TOKEN"] = secret("ADMIN_TOKEN", new_token())
    values["FINANCE_TOKEN"] = secret("FINANCE_TOKEN", new_token())
    values["PARTNER_WEBHOOK_SECRET"] = secret("PARTNER_WEBHOOK_SECRET", new_webhook_secret())
    values["PARTNER_NOTIFY_URL"] = env.get("PARTNER_NOTIFY_URL") or PARTNER_NOTIFY_URL_DEFAULT
    values["PARTNER_NOTIFY_SECRET"] = secret("PARTNER_NOTIFY_SECRET", new_webhook_secret())
    values["PARTNER_API_TOKEN"] = secret("PARTNER_API_TOKEN", new_partner_token())
    # The payee key is this stack's own, random (never the public development key), kept
    # across restarts with the rest of stack.env so sealed bank details stay readable.
    values["ALLOWANCE_PAYEE_KEYS"] = secret("ALLOWANCE_PAYEE_KEYS", new_payee_key())
    # The allowance's key pair for bank details from the partner: the private key stays in
    # the allowance's process, the public key (derived, never stored apart) is the matcher's.
    seal_keys = secret("ALLOWANCE_PAYEE_SEAL_KEYS", new_private_key_spec())
    values["ALLOWANCE_PAYEE_SEAL_KEYS"] = seal_keys
    values["PAYEE_SEAL_PUBLIC_KEY"] = env.get("PAYEE_SEAL_PUBLIC_KEY") or public_key_spec(seal_keys)
    values["APP_ENV"] = env.get("APP_ENV") or APP_ENV_DEFAULT
    assert tuple(values) == KEYS, "stack.env keys drifted from KEYS"
    return values
