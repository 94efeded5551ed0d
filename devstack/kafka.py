"""A real Apache Kafka 4.4 broker (KRaft, one combined broker+controller) for local runs.

Why real Kafka and not a stand-in: the services rely on consumer-group rebalances, offsets
and transactions behaving exactly as in production. The jars come from Maven Central via a
one-dependency pom and are cached under `.cache/kafka/libs` for every run dir, because
fetching them is the only slow step; the pom's checksum next to the jars says when the
cache is stale.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import re
import secrets
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack import procs, tls
from devstack.config import LOCALHOST, STACK_DIR, StackConfig
from devstack.errors import StackError, os_error_to_stack_error
from shared.kafka import KafkaSecurity
from shared.topics import ADMIN_USER

POM = STACK_DIR / "kafka-pom.xml"
LOG4J2_CONFIG = STACK_DIR / "log4j2.properties"
JAVA_MAJOR_MIN = 17
READY_TIMEOUT_S = 60.0
MAVEN_TIMEOUT_S = 600.0
MAIN_CLASS = "kafka.Kafka"

# Kafka's internal topics default to 50 partitions; on one laptop broker that is 100 files
# and a slower first consumer-group join for no benefit.
INTERNAL_TOPIC_PARTITIONS = 12

Say = Callable[[str], None]


def data_dir(config: StackConfig) -> Path:
    return config.kafka_dir / "data"


def properties_file(config: StackConfig) -> Path:
    return config.kafka_dir / "server.properties"


def bootstrap(config: StackConfig) -> str:
    return f"{LOCALHOST}:{config.kafka_port}"


# --- prerequisites -------------------------------------------------------------------------


def ensure_java() -> str:
    """Path of a Java 17+ `java`, or a StackError saying to install a JDK."""
    java = shutil.which("java")
    if java is None:
        raise StackError(
            "No `java` on PATH: install a JDK 17 (e.g. `apt-get install openjdk-17-jdk-headless`)"
            " or set KAFKA_BOOTSTRAP_SERVERS to use an external Kafka."
        )
    try:
        result = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise StackError(f"`{java} -version` failed ({exc}); install a JDK 17.") from None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', result.stderr + result.stdout)
    if match is None:
        raise StackError(f"Could not read the Java version from `{java} -version`.")
    major = int(match.group(1))
    if major == 1 and match.group(2):  # "1.8.0" style
        major = int(match.group(2))
    if major < JAVA_MAJOR_MIN:
        raise StackError(
            f"Kafka 4 needs Java {JAVA_MAJOR_MIN}+, but `{java}` is Java {major}; install a JDK 17."
        )
    return java


def _pom_checksum() -> str:
    return hashlib.sha256(POM.read_bytes()).hexdigest()


def ensure_jars(config: StackConfig, say: Say) -> Path:
    """The Kafka jars, fetched with Maven only when missing or when the pom changed."""
    libs = config.libs_dir
    checksum_file = libs / "pom.sha256"
    wanted = _pom_checksum()

    def fresh() -> bool:
        try:
            return checksum_file.read_text().strip() == wanted
        except OSError:
            return False

    if fresh():
        return libs
    # Two launchers (the main stack and a test stack) may fetch at once; one does the work.
    with procs.file_lock(config.cache_dir / ".lock"):
        if fresh():
            return libs
        mvn = shutil.which("mvn")
        if mvn is None:
            raise StackError(
                "Maven (`mvn`) is not on PATH; install Maven 3 (`apt-get install maven`) so the "
                "launcher can fetch the Kafka jars, or set KAFKA_BOOTSTRAP_SERVERS."
            )
        say("kafka: fetching the Kafka jars from Maven Central (once)...")
        staging = config.cache_dir / f"libs.tmp-{os.getpid()}"
        log_path = config.log_file("maven")
        try:
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir(parents=True)
            log_path.parent.mkdir(parents=True, exist_ok=True)
            with log_path.open("w") as log:
                result = subprocess.run(
                    [
                        mvn,
                        "-B",
                        "--no-transfer-progress",
                        "-f",
                        str(POM),
                        "dependency:copy-dependencies",
                        f"-DoutputDirectory={staging}",
                        "-DincludeScope=runtime",
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=dict(config.environ),
                    timeout=MAVEN_TIMEOUT_S,
                    check=False,
                )
        except subprocess.TimeoutExpired:
            shutil.rmtree(staging, ignore_errors=True)
            raise StackError(
                f"Maven did not finish fetching the Kafka jars in {MAVEN_TIMEOUT_S:.0f} s; "
                f"is Maven Central reachable? See {log_path}."
            ) from None
        except OSError as exc:
            shutil.rmtree(staging, ignore_errors=True)
            raise os_error_to_stack_error(exc) from None
        if result.returncode != 0 or not any(staging.glob("kafka_2.13-*.jar")):
            shutil.rmtree(staging, ignore_errors=True)
            text = procs.tail(log_path, 200)
            if re.search(
                r"Could not transfer|Unknown host|UnknownHost|Connection refused|timed out|"
                r"Network is unreachable|Could not resolve|offline|No plugin found for prefix",
                text,
                re.IGNORECASE,
            ):
                raise StackError(
                    "Maven could not download the Kafka jars: Maven Central is unreachable "
                    f"(check the network or proxy settings); see {log_path}."
                )
            raise StackError(f"Maven failed to gather the Kafka jars; see {log_path}.")
        try:
            (staging / "pom.sha256").write_text(wanted + "\n")
            shutil.rmtree(libs, ignore_errors=True)
            staging.replace(libs)
        except OSError as exc:
            shutil.rmtree(staging, ignore_errors=True)
            raise os_error_to_stack_error(exc, libs) from None
    return libs


# --- security ------------------------------------------------------------------------------

SCRAM_MECHANISM = "SCRAM-SHA-512"
# The broker's own principal towards its controller (SASL/PLAIN on the loopback-only
# controller listener: KRaft controllers cannot use SCRAM, whose credentials live in the
# metadata log they serve).
CONTROLLER_USER = "controller"
_SCRAM_MODULE = "org.apache.kafka.common.security.scram.ScramLoginModule"
_PLAIN_MODULE = "org.apache.kafka.common.security.plain.PlainLoginModule"


@dataclass(frozen=True)
class BrokerSecurity:
    """What the local broker enforces: SASL_SSL with SCRAM users, or nothing (PLAINTEXT).

    `users` maps every SCRAM user (the services and the admin) to its password; they are
    added when the storage is formatted, so a wiped run dir gets them again."""

    sasl_ssl: bool
    users: Mapping[str, str] = field(default_factory=dict)
    controller_secret: str = ""
    tls_files: tls.TlsFiles | None = None

    @property
    def listener(self) -> str:
        return "SASL_SSL" if self.sasl_ssl else "PLAINTEXT"

    def client(self) -> KafkaSecurity:
        """How the launcher itself (the admin user) connects."""
        if not self.sasl_ssl or self.tls_files is None:
            return KafkaSecurity()
        return KafkaSecurity(
            "SASL_SSL",
            SCRAM_MECHANISM,
            ADMIN_USER,
            self.users[ADMIN_USER],
            str(self.tls_files.ca_cert),
        )


def tls_dir(config: StackConfig) -> Path:
    return config.kafka_dir / "tls"


def broker_security(config: StackConfig, env: Mapping[str, str]) -> BrokerSecurity:
    """The broker's security from stack.env's values; certificates and the controller's
    secret are made once per run dir."""
    if env.get("KAFKA_SECURITY_PROTOCOL", "SASL_SSL") != "SASL_SSL":
        return BrokerSecurity(sasl_ssl=False)
    files = tls.ensure_certificates(tls_dir(config), LOCALHOST)
    secret_file = config.kafka_dir / "controller.secret"
    try:
        secret = secret_file.read_text().strip() if secret_file.exists() else ""
        if not secret:
            secret = secrets.token_urlsafe(32)
            fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secret + "\n")
    except OSError as exc:
        raise os_error_to_stack_error(exc, secret_file) from None
    from shared.provision import SERVICES

    users = {ADMIN_USER: env["KAFKA_SASL_PASSWORD"]}
    users.update({name: env[f"{name.upper()}_KAFKA_PASSWORD"] for name in SERVICES})
    return BrokerSecurity(True, users, secret, files)


def _security_properties(security: BrokerSecurity) -> dict[str, str]:
    if not security.sasl_ssl or security.tls_files is None:
        return {"listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"}
    admin_password = security.users[ADMIN_USER]
    secret = security.controller_secret
    return {
        "listener.security.protocol.map": "CONTROLLER:SASL_PLAINTEXT,SASL_SSL:SASL_SSL",
        "sasl.mechanism.controller.protocol": "PLAIN",
        "listener.name.controller.sasl.enabled.mechanisms": "PLAIN",
        "listener.name.controller.plain.sasl.jaas.config": (
            f'{_PLAIN_MODULE} required username="{CONTROLLER_USER}" password="{secret}" '
            f'user_{CONTROLLER_USER}="{secret}";'
        ),
        "sasl.mechanism.inter.broker.protocol": SCRAM_MECHANISM,
        "listener.name.sasl_ssl.sasl.enabled.mechanisms": SCRAM_MECHANISM,
        "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": (
            f'{_SCRAM_MODULE} required username="{ADMIN_USER}" password="{admin_password}";'
        ),
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(security.tls_files.broker_keystore),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(security.tls_files.ca_cert),
        "ssl.enabled.protocols": "TLSv1.3,TLSv1.2",
        # Nobody may do anything that no ACL allows; the admin (provisioning, tests) and the
        # broker's own controller connection are super users. ACLs: shared/topics.py ACCESS.
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "allow.everyone.if.no.acl.found": "false",
        "super.users": f"User:{ADMIN_USER};User:{CONTROLLER_USER}",
    }


def listeners_line(config: StackConfig, security: BrokerSecurity) -> str:
    return (
        f"listeners={security.listener}://{LOCALHOST}:{config.kafka_port},"
        f"CONTROLLER://{LOCALHOST}:{config.kafka_controller_port}"
    )


# --- configuration and storage -------------------------------------------------------------


def _server_properties(config: StackConfig, security: BrokerSecurity) -> str:
    port, controller_port = config.kafka_port, config.kafka_controller_port
    listener = security.listener
    lines = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.bootstrap.servers": f"{LOCALHOST}:{controller_port}",
        "listeners": listeners_line(config, security).removeprefix("listeners="),
        "advertised.listeners": f"{listener}://{LOCALHOST}:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": listener,
        **_security_properties(security),
        "log.dirs": str(data_dir(config)),
        # Topics are created by the launcher from shared/topics.py with their settings; a
        # typo in a topic name must fail loudly, not create a stray topic.
        "auto.create.topics.enable": "false",
        # Partitions of a topic created without an explicit count: the services' topics
        # name theirs (KAFKA_PARTITIONS, shared/topics.py); this is for tools' ad-hoc topics.
        "num.partitions": str(config.kafka_partitions),
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": str(INTERNAL_TOPIC_PARTITIONS),
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": str(INTERNAL_TOPIC_PARTITIONS),
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        # Tests start consumers and expect assignments at once, not after 3 s.
        "group.initial.rebalance.delay.ms": "0",
        "num.recovery.threads.per.data.dir": "1",
        # After a kill -9 the controller refuses the restarted broker until the dead
        # incarnation's session expires (9 s by default); a short session makes crash
        # recovery fast. One local node has no network between broker and controller, so
        # heartbeats every 500 ms are cheap and a 2.5 s pause is not a real risk.
        "broker.heartbeat.interval.ms": "500",
        "broker.session.timeout.ms": "2500",
        "log.retention.check.interval.ms": "300000",
    }
    header = "# Written by `python -m devstack up` on every start; edits are overwritten.\n"
    return header + "".join(f"{key}={value}\n" for key, value in lines.items())


def write_properties(config: StackConfig, security: BrokerSecurity) -> Path:
    """Written with mode 600: it holds the admin's and the controller's passwords."""
    path = properties_file(config)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            os.fchmod(handle.fileno(), 0o600)
            handle.write(_server_properties(config, security))
    except OSError as exc:
        raise os_error_to_stack_error(exc, path) from None
    return path


def _new_cluster_id() -> str:
    """A Kafka `Uuid` string (22 chars of url-safe base64), as `StorageTool random-uuid`
    makes, without starting a JVM. Like Kafka, avoid a leading '-' (reads as a flag)."""
    while True:
        value = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
        if not value.startswith("-"):
            return value


def _formatted_marker(config: StackConfig) -> Path:
    return config.kafka_dir / "formatted-controller-port"


def _security_marker(config: StackConfig) -> Path:
    return config.kafka_dir / "formatted-security"


def ensure_formatted(config: StackConfig, java: str, libs: Path, security: BrokerSecurity) -> None:
    """Format the KRaft storage once, with the SCRAM users; the cluster id is kept."""
    marker = _formatted_marker(config)
    if (data_dir(config) / "meta.properties").exists():
        try:
            formatted_with = _security_marker(config).read_text().strip()
        except OSError:
            formatted_with = "PLAINTEXT"  # formatted before the stack had security
        if formatted_with != security.listener:
            raise StackError(
                f"The Kafka data in {data_dir(config)} was formatted for {formatted_with}, "
                f"but the stack now runs {security.listener}; run "
                "`python -m devstack down --wipe` first (the SCRAM users are added when the "
                "storage is formatted)."
            )
        # `--standalone` records the controller's address in the metadata log, so the
        # controller port cannot change afterwards without reformatting.
        try:
            formatted_port = int(marker.read_text().strip())
        except (OSError, ValueError):
            formatted_port = config.kafka_controller_port
        if formatted_port != config.kafka_controller_port:
            raise StackError(
                f"The Kafka data in {data_dir(config)} was formatted for controller port "
                f"{formatted_port}; set KAFKA_CONTROLLER_PORT={formatted_port} or run "
                "`python -m devstack down --wipe` first."
            )
        return
    cluster_id_file = config.kafka_dir / "cluster.id"
    try:
        cluster_id = cluster_id_file.read_text().strip() if cluster_id_file.exists() else ""
        if not cluster_id:
            cluster_id = _new_cluster_id()
            cluster_id_file.write_text(cluster_id + "\n")
        # A half-formatted directory (crash during format) is retried from scratch.
        shutil.rmtree(data_dir(config), ignore_errors=True)
        log_path = config.log_file("kafka")
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("a") as log:
            log.write(f"--- formatting KRaft storage, cluster id {cluster_id}\n")
            log.flush()
            result = subprocess.run(
                [
                    java,
                    "-cp",
                    f"{libs}/*",
                    f"-Dlog4j2.configurationFile={LOG4J2_CONFIG}",
                    "kafka.tools.StorageTool",
                    "format",
                    "--standalone",
                    "-t",
                    cluster_id,
                    "-c",
                    str(properties_file(config)),
                    *(
                        arg
                        for name, password in security.users.items()
                        for arg in (
                            "--add-scram",
                            f"{SCRAM_MECHANISM}=[name={name},password={password}]",
                        )
                    ),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=120,
                check=False,
            )
    except OSError as exc:
        raise os_error_to_stack_error(exc) from None
    except subprocess.TimeoutExpired:
        raise StackError(f"Formatting the Kafka storage timed out; see {log_path}.") from None
    if result.returncode != 0:
        raise StackError(f"Formatting the Kafka storage failed; see {log_path}.")
    try:
        marker.write_text(f"{config.kafka_controller_port}\n")
        _security_marker(config).write_text(f"{security.listener}\n")
    except OSError as exc:
        raise os_error_to_stack_error(exc, marker) from None


# --- process -------------------------------------------------------------------------------


def _is_our_kafka(config: StackConfig, pid: int) -> bool:
    args = procs.cmdline(pid)
    return MAIN_CLASS in args and str(properties_file(config)) in args


def running_pid(config: StackConfig) -> int | None:
    """The pid of this run dir's broker, trusting the pid file only if the command matches.

    A broker whose pid file was lost is found by its command line and adopted.
    """
    pid_file = config.pid_file("kafka")
    pid = procs.read_pid_file(pid_file)
    if pid is not None and procs.alive(pid) and _is_our_kafka(config, pid):
        return pid
    found = procs.find_pids(lambda candidate: _is_our_kafka(config, candidate))
    if found:
        procs.write_pid_file(pid_file, found[0])
        return found[0]
    return None


def check_ports(config: StackConfig) -> None:
    procs.require_free_port(config.kafka_port, "KAFKA_PORT", "Kafka")
    procs.require_free_port(
        config.kafka_controller_port, "KAFKA_CONTROLLER_PORT", "Kafka controller"
    )


def start(config: StackConfig, java: str, libs: Path) -> int:
    """Start the broker detached; the caller waits for readiness."""
    pid_file = config.pid_file("kafka")
    procs.remove_file(pid_file)
    # After a kill -9 the OS lock is gone but the file stays; no broker of ours is running
    # (checked by the caller), so the file is stale.
    procs.remove_file(data_dir(config) / ".lock")
    log_path = config.log_file("kafka")
    try:
        with log_path.open("a") as log:
            log.write(f"--- starting Kafka at {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
    except OSError as exc:
        raise os_error_to_stack_error(exc, log_path) from None
    env = dict(config.environ)
    # The broker must not pick up a developer's KAFKA_OPTS/KAFKA_HEAP_OPTS meant for tools.
    for key in ("KAFKA_OPTS", "KAFKA_HEAP_OPTS", "JAVA_TOOL_OPTIONS", "CLASSPATH"):
        env.pop(key, None)
    cmd = [
        java,
        "-Xms256m",
        "-Xmx768m",
        "-XX:+ExitOnOutOfMemoryError",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={LOG4J2_CONFIG}",
        "-cp",
        f"{libs}/*",
        MAIN_CLASS,
        str(properties_file(config)),
    ]
    pid = procs.spawn_detached(cmd, log_path, env, config.kafka_dir)
    procs.write_pid_file(pid_file, pid)
    return pid


async def _list_topics(
    bootstrap_servers: str, timeout_s: float, security: KafkaSecurity
) -> list[str]:
    from aiokafka.admin import AIOKafkaAdminClient

    admin: Any = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers,
        request_timeout_ms=int(timeout_s * 1000),
        **security.client_kwargs(),
    )
    try:
        await asyncio.wait_for(admin.start(), timeout_s)
        topics: list[str] = await asyncio.wait_for(admin.list_topics(), timeout_s)
        return topics
    finally:
        with contextlib.suppress(Exception):
            await admin.close()


async def wait_ready(
    bootstrap_servers: str,
    pid: int | None,
    log_path: Path | None,
    timeout_s: float = READY_TIMEOUT_S,
    security: KafkaSecurity | None = None,
) -> None:
    """Ready means a TCP connect works and an admin client can list topics (as the admin
    user, over TLS, when the broker has security)."""
    deadline = time.monotonic() + timeout_s
    host, _, port_text = bootstrap_servers.split(",")[0].rpartition(":")
    port = int(port_text)
    where = (
        f"; see {log_path}"
        if log_path
        else " (KAFKA_BOOTSTRAP_SERVERS is set, so no local Kafka was started)"
    )
    last_error = ""
    while True:
        if pid is not None and not procs.alive(pid):
            raise StackError(
                f"Kafka exited while starting{where}.", procs.tail(log_path) if log_path else ""
            )
        if procs.tcp_open(host or LOCALHOST, port):
            try:
                await _list_topics(bootstrap_servers, 5.0, security or KafkaSecurity())
                return
            except Exception as exc:  # any failure means "not yet"; the deadline bounds it
                last_error = f"{type(exc).__name__}: {exc}"
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error})" if last_error else ""
            raise StackError(
                f"Kafka at {bootstrap_servers} was not ready within {timeout_s:.0f} s{detail}"
                f"{where}."
            )
        await asyncio.sleep(0.2)


def stop(config: StackConfig) -> bool:
    """Stop this run dir's broker gracefully (SIGTERM, then SIGKILL); True if one ran."""
    pid = running_pid(config)
    if pid is not None:
        procs.terminate(pid)
    procs.remove_file(config.pid_file("kafka"))
    return pid is not None


def kill9(config: StackConfig) -> None:
    """Crash the broker the way a power cut would; the pid file stays behind on purpose."""
    pid = running_pid(config)
    if pid is not None:
        procs.kill9(pid)
