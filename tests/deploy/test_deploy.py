"""deploy/ is valid and agrees with the code: Kubernetes manifests, Prometheus, Grafana.

The overlays are rendered by the real kustomize (v5.8.1, built from the Go module proxy
into .tools/bin by `make setup`; no Python re-implementation), Kubernetes resources are
validated against the API's OpenAPI schemas by kubernetes-validate (a dev dependency), and
the Prometheus files by promtool (Debian's `prometheus` package, installed by `make setup`).
A missing tool fails the test with the command that installs it.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any, get_args

import kubernetes_validate
import pytest
import yaml

from shared.settings import Role
from shared.topics import ACCESS, ADMIN_USER, TopicSpec, acl_rules, dlq_of, topic_specs
from tests.deploy import deploy_check as dc
from tools import kafka_users

SERVICES = ("registry", "matcher", "allowance")
OVERLAYS = ("local", "production")
# The Kubernetes versions whose schemas the manifests must satisfy: a widely deployed one
# and the newest kubernetes-validate ships.
K8S_VERSIONS = ("1.30.0", "1.37.0")
# What each service consumes (docs/architecture.md); its HPA may not exceed their partitions.
CONSUMES = {
    "registry": ("matcher.bookings.v1", "allowance.budget.v1"),
    "matcher": (
        "registry.postings.v1",
        "registry.attendance.v1",
        "matcher.applications.v1",
        "allowance.policy.v1",
    ),
    "allowance": ("registry.postings.v1", "registry.attendance.v1"),
}
# The secrets each process takes, by service and ROLE (decision 0008): an `api` process
# verifies webhooks and serves staff routes, a `worker` signs partner notifications; only
# the allowance serves finance staff, so only it takes FINANCE_TOKEN; only a matcher API
# process serves the partner's pull API, so only it takes PARTNER_API_TOKEN.
SECRET_KEYS = {
    ("registry", "all"): {"DATABASE_URL", "KAFKA_SASL_PASSWORD", "ADMIN_TOKEN"},
    ("matcher", "all"): {"DATABASE_URL", "KAFKA_SASL_PASSWORD", "ADMIN_TOKEN",
                         "PARTNER_WEBHOOK_SECRET", "PARTNER_NOTIFY_SECRET", "PARTNER_API_TOKEN",
                         "PAYEE_SEAL_PUBLIC_KEY"},
    ("matcher", "api"): {"DATABASE_URL", "KAFKA_SASL_PASSWORD", "ADMIN_TOKEN", "PARTNER_WEBHOOK_SECRET",
                         "PARTNER_API_TOKEN", "PAYEE_SEAL_PUBLIC_KEY"},
    ("matcher", "worker"): {"DATABASE_URL", "KAFKA_SASL_PASSWORD", "PARTNER_NOTIFY_SECRET"},
    ("allowance", "all"): {"DATABASE_URL", "KAFKA_SASL_PASSWORD", "ADMIN_TOKEN", "FINANCE_TOKEN",
                           "ALLOWANCE_PAYEE_KEYS", "ALLOWANCE_PAYEE_SEAL_KEYS"},
}  # fmt: skip
# The container port every service pod serves /metrics on (METRICS_PORT; the API port
# answers 404 there): named `metrics`, scraped only from the monitoring namespace.
METRICS_PORT = 9100
RUNBOOK = "https://github.com/gwangsan/danggeun/blob/main/docs/operations.md#"
STRIMZI = "kafka.strimzi.io/v1beta2"


def _tool(get: Any) -> str:
    try:
        path: str = get()
    except dc.ToolMissing as exc:
        pytest.fail(str(exc))
    return path


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict[str, Any]]]:
    _tool(dc.kustomize)
    return {name: dc.render(dc.K8S / "overlays" / name) for name in OVERLAYS}


def _by_kind(resources: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {r["metadata"]["name"]: r for r in resources if r["kind"] == kind}


def _config(resources: list[dict[str, Any]]) -> dict[str, str]:
    [config] = [r for r in resources if r["kind"] == "ConfigMap"]
    data: dict[str, str] = config["data"]
    return data


def _topics_of(resources: list[dict[str, Any]]) -> list[TopicSpec]:
    """The topics as the overlay's KAFKA_PARTITIONS lays them out (shared.topics)."""
    return topic_specs(int(_config(resources)["KAFKA_PARTITIONS"]))


def _containers(resource: dict[str, Any]) -> list[dict[str, Any]]:
    containers: list[dict[str, Any]] = resource["spec"]["template"]["spec"]["containers"]
    return containers


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


def _pod_labels(deployment: dict[str, Any]) -> dict[str, str]:
    labels: dict[str, str] = deployment["spec"]["template"]["metadata"]["labels"]
    return labels


def _service_of(deployment: dict[str, Any]) -> str:
    """The service a Deployment runs (its pods' app.kubernetes.io/name)."""
    return _pod_labels(deployment)["app.kubernetes.io/name"]


def _role(deployment: dict[str, Any]) -> str:
    """The Deployment's ROLE (decision 0008); unset means the default, `all`."""
    [container] = _containers(deployment)
    entry = _env(container).get("ROLE")
    if entry is None:
        return "all"
    role: str = entry["value"]
    return role


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Whether a label selector (a LabelSelector with matchLabels/matchExpressions, or a
    Service's plain map) matches a set of labels, as the API server evaluates it."""
    if "matchLabels" not in selector and "matchExpressions" not in selector:
        selector = {"matchLabels": selector}
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expr in selector.get("matchExpressions", []):
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        ok = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[op]
        if not ok:
            return False
    return True


# --- Kubernetes -----------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_core_resource_matches_the_kubernetes_schemas(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    """Every non-Strimzi resource of the overlay validates (strictly: no unknown fields)
    against the OpenAPI schemas of each Kubernetes version in K8S_VERSIONS."""
    core = [r for r in rendered[overlay] if not r["apiVersion"].startswith("kafka.strimzi.io/")]
    assert {r["kind"] for r in core} >= {
        "Namespace", "ConfigMap", "Deployment", "Service", "PodDisruptionBudget",
        "HorizontalPodAutoscaler", "Job",
    }  # fmt: skip
    for version in K8S_VERSIONS:
        for resource in core:
            try:
                kubernetes_validate.validate(resource, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                name = f"{resource['kind']}/{resource['metadata']['name']}"
                pytest.fail(f"{overlay}: {name} is invalid for Kubernetes {version}: {exc}")


def test_the_schema_check_rejects_a_misspelled_field(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    """The validation above is not vacuous: a Deployment with a misspelled probe field fails."""
    deployment = json.loads(json.dumps(_by_kind(rendered["production"], "Deployment")["matcher"]))
    probe = _containers(deployment)[0]["readinessProbe"]
    probe["periodSecond"] = probe.pop("periodSeconds")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSIONS[-1], strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_service_has_deployment_service_pdb_and_hpa(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    """Each service has a Deployment, a Service selecting its pods, a PodDisruptionBudget
    and a HorizontalPodAutoscaler scaling that Deployment, all in the gwangsan namespace."""
    resources = rendered[overlay]
    assert all(
        r["metadata"].get("namespace") == "gwangsan" for r in resources if r["kind"] != "Namespace"
    )
    for service in SERVICES:
        deployment = _by_kind(resources, "Deployment")[service]
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert selector.items() <= pod_labels.items()
        svc = _by_kind(resources, "Service")[service]
        assert svc["spec"]["selector"].items() <= pod_labels.items()
        assert [p["targetPort"] for p in svc["spec"]["ports"]] == ["http"]
        pdb = _by_kind(resources, "PodDisruptionBudget")[service]
        assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
        hpa = _by_kind(resources, "HorizontalPodAutoscaler")[service]
        assert hpa["spec"]["scaleTargetRef"] == {
            "apiVersion": "apps/v1", "kind": "Deployment", "name": service,
        }  # fmt: skip
        assert "replicas" not in deployment["spec"], "the HPA owns the replica count"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_selectors_never_reach_another_deployments_pods(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    """Every Deployment (one per service, or per service and role) selects its own pods and
    no other Deployment's; it has exactly one PodDisruptionBudget and one HPA; every Service
    selects the pods of exactly one Deployment, and never a worker's (ROLE=worker serves
    only probes and metrics)."""
    resources = rendered[overlay]
    deployments = _by_kind(resources, "Deployment")
    pdbs = _by_kind(resources, "PodDisruptionBudget").values()
    hpas = _by_kind(resources, "HorizontalPodAutoscaler").values()
    for name, deployment in deployments.items():
        assert _role(deployment) in get_args(Role), name
        assert "replicas" not in deployment["spec"], name
        selector = deployment["spec"]["selector"]
        for other_name, other in deployments.items():
            assert _selects(selector, _pod_labels(other)) == (other_name == name), (
                f"{name}'s selector vs {other_name}'s pods"
            )
        covering = [p for p in pdbs if _selects(p["spec"]["selector"], _pod_labels(deployment))]
        assert len(covering) == 1, f"{name}: {len(covering)} PodDisruptionBudgets"
        scaling = [h for h in hpas if h["spec"]["scaleTargetRef"]["name"] == name]
        assert len(scaling) == 1, f"{name}: {len(scaling)} HorizontalPodAutoscalers"
    for pdb in pdbs:
        matched = [n for n, d in deployments.items() if _selects(pdb["spec"]["selector"],
                                                                _pod_labels(d))]  # fmt: skip
        assert len(matched) == 1, f"PodDisruptionBudget {pdb['metadata']['name']}: {matched}"
    for svc in _by_kind(resources, "Service").values():
        matched = [d for d in deployments.values() if _selects(svc["spec"]["selector"],
                                                              _pod_labels(d))]  # fmt: skip
        assert len(matched) == 1, f"Service {svc['metadata']['name']} selects {len(matched)}"
        assert _role(matched[0]) != "worker", f"Service {svc['metadata']['name']}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_deployments_run_the_image_with_probes_env_and_a_locked_down_context(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    """Each Deployment (of any role) runs `python -m <service>` from the one image, listens
    on 0.0.0.0:8000, probes /readyz (readiness) and /healthz (liveness), has requests and
    limits, is annotated for scraping, runs as uid 10001 non-root with a read-only root
    filesystem and no privilege escalation, and takes DATABASE_URL and exactly the secrets
    its role uses (SECRET_KEYS) from Secrets."""
    resources = rendered[overlay]
    config = next(iter(_by_kind(resources, "ConfigMap").values()))
    deployments = _by_kind(resources, "Deployment")
    assert {_service_of(d) for d in deployments.values()} == set(SERVICES)
    for deployment in deployments.values():
        service, role = _service_of(deployment), _role(deployment)
        pod = deployment["spec"]["template"]
        annotations = pod["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/port"] == str(METRICS_PORT)
        assert annotations["prometheus.io/path"] == "/metrics"
        assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
        assert pod["spec"]["securityContext"]["runAsUser"] == 10001
        [container] = _containers(deployment)
        assert container["image"].split(":")[0] == "danggeun-gwangsan"
        assert container["command"] == ["python", "-m", service]
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert container["ports"][0]["containerPort"] == 8000
        resources_ = container["resources"]
        assert {"cpu", "memory"} <= resources_["requests"].keys()
        assert {"cpu", "memory"} <= resources_["limits"].keys()
        ctx = container["securityContext"]
        assert ctx["runAsNonRoot"] is True and ctx["runAsUser"] == 10001
        assert ctx["readOnlyRootFilesystem"] is True
        assert ctx["allowPrivilegeEscalation"] is False
        env = _env(container)
        assert env["HOST"]["value"] == "0.0.0.0"
        assert env["PORT"]["value"] == "8000"
        assert env["SERVICE_NAME"]["value"] == service
        from_config = {
            "APP_ENV",
            "KAFKA_BOOTSTRAP_SERVERS",
            "KAFKA_SECURITY_PROTOCOL",
            "KAFKA_SSL_CAFILE",
        }
        if service == "matcher" and role != "api":  # the notification sender's target
            from_config.add("PARTNER_NOTIFY_URL")
        for key in from_config:
            ref = env[key]["valueFrom"]["configMapKeyRef"]
            assert ref == {"name": config["metadata"]["name"], "key": key}
            assert config["data"][key]
        from_secrets = {k for k, e in env.items() if "secretKeyRef" in e.get("valueFrom", {})}
        assert from_secrets == SECRET_KEYS[service, role], (service, role)
        assert all("value" not in env[k] for k in from_secrets)
    expected_env = "production" if overlay == "production" else "demo"
    assert config["data"]["APP_ENV"] == expected_env


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_hpa_max_replicas_never_exceed_the_partitions_of_consumed_topics(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    """A consumer group uses at most one process per partition: the HPA of every Deployment
    that consumes (ROLE all or worker) has maxReplicas at most the smallest partition count
    of the topics its service consumes; an `api` Deployment consumes nothing and is not
    bounded so. minReplicas is at most maxReplicas everywhere."""
    partitions = {t.name: t.partitions for t in _topics_of(rendered[overlay])}
    deployments = _by_kind(rendered[overlay], "Deployment")
    consuming = set()
    for hpa in _by_kind(rendered[overlay], "HorizontalPodAutoscaler").values():
        deployment = deployments[hpa["spec"]["scaleTargetRef"]["name"]]
        assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
        if _role(deployment) == "api":
            continue
        service = _service_of(deployment)
        consuming.add(service)
        bound = min(partitions[topic] for topic in CONSUMES[service])
        assert hpa["spec"]["maxReplicas"] <= bound, hpa["metadata"]["name"]
    assert consuming == set(CONSUMES), "every service has a consuming Deployment"


def test_production_runs_the_matcher_as_an_api_and_a_worker(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    """Decision 0008 in production: `matcher` (ROLE=api) and `matcher-worker` (ROLE=worker)
    run the same image and command; the Service `matcher` selects the API's pods only; the
    worker has its own PodDisruptionBudget and an HPA bounded by the partitions it consumes,
    scaling down one pod at a time after a stabilization window; registry and allowance
    stay ROLE=all."""
    resources = rendered["production"]
    deployments = _by_kind(resources, "Deployment")
    api, worker = deployments["matcher"], deployments["matcher-worker"]
    assert {n: _role(d) for n, d in deployments.items()} == {
        "registry": "all", "matcher": "api", "matcher-worker": "worker", "allowance": "all",
    }  # fmt: skip
    [api_container], [worker_container] = _containers(api), _containers(worker)
    for key in ("image", "command", "ports", "securityContext", "resources"):
        assert api_container[key] == worker_container[key], key
    assert worker_container["command"] == ["python", "-m", "matcher"]
    assert worker_container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert worker_container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert (
        api["spec"]["template"]["spec"]["securityContext"]
        == (worker["spec"]["template"]["spec"]["securityContext"])
    )
    api_labels, worker_labels = _pod_labels(api), _pod_labels(worker)
    assert api_labels["app.kubernetes.io/name"] == worker_labels["app.kubernetes.io/name"]
    assert api_labels["app.kubernetes.io/component"] == "api"
    assert worker_labels["app.kubernetes.io/component"] == "worker"
    service = _by_kind(resources, "Service")["matcher"]
    assert _selects(service["spec"]["selector"], api_labels)
    assert not _selects(service["spec"]["selector"], worker_labels)
    assert not _selects(api["spec"]["selector"], worker_labels)
    assert not _selects(worker["spec"]["selector"], api_labels)
    assert [s for s in _by_kind(resources, "Service") if s.startswith("matcher")] == ["matcher"]
    pdb = _by_kind(resources, "PodDisruptionBudget")["matcher-worker"]
    assert _selects(pdb["spec"]["selector"], worker_labels)
    assert not _selects(pdb["spec"]["selector"], api_labels)
    api_pdb = _by_kind(resources, "PodDisruptionBudget")["matcher"]
    assert not _selects(api_pdb["spec"]["selector"], worker_labels)
    hpas = _by_kind(resources, "HorizontalPodAutoscaler")
    hpa = hpas["matcher-worker"]
    assert hpa["spec"]["scaleTargetRef"]["name"] == "matcher-worker"
    partitions = {t.name: t.partitions for t in _topics_of(resources)}
    assert hpa["spec"]["maxReplicas"] <= min(partitions[t] for t in CONSUMES["matcher"])
    scale_down = hpa["spec"]["behavior"]["scaleDown"]
    assert scale_down["stabilizationWindowSeconds"] >= 300
    assert all(
        p["type"] == "Pods" and p["value"] == 1 and p["periodSeconds"] >= 120
        for p in scale_down["policies"]
    )
    assert hpas["matcher"]["spec"]["scaleTargetRef"]["name"] == "matcher"
    assert hpas["matcher"]["spec"]["maxReplicas"] >= hpa["spec"]["maxReplicas"]


def test_local_runs_every_service_as_one_process(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    """The local overlay (like the base) runs one Deployment per service with ROLE=all
    (decisions 0002 and 0008): routes, consumers, sweepers and senders in one process."""
    deployments = _by_kind(rendered["local"], "Deployment")
    assert set(deployments) == set(SERVICES)
    assert {_role(d) for d in deployments.values()} == {"all"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_provisioning_job_gets_admin_and_service_database_urls_from_secrets(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    """The Job runs `python -m shared.provision` with the admin DATABASE_URL, the three
    service URLs (from the services' Secrets) and KAFKA_BOOTSTRAP_SERVERS."""
    job = _by_kind(rendered[overlay], "Job")["gwangsan-provision"]
    [container] = _containers(job)
    assert container["command"] == ["python", "-m", "shared.provision"]
    env = _env(container)
    assert env["DATABASE_URL"]["valueFrom"]["secretKeyRef"]["name"] == "gwangsan-provision"
    for service in SERVICES:
        ref = env[f"{service.upper()}_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": f"{service}-secrets", "key": "DATABASE_URL"}
    assert "configMapKeyRef" in env["KAFKA_BOOTSTRAP_SERVERS"]["valueFrom"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_no_secret_value_is_in_the_repository(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    """No rendered overlay contains a Secret, and no manifest under deploy/k8s declares one
    (or a secretGenerator): Secrets are created in the cluster (deploy/k8s/README.md)."""
    for overlay, resources in rendered.items():
        assert not [r for r in resources if r["kind"] == "Secret"], overlay
    for path in dc.K8S.rglob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                assert doc.get("kind") != "Secret", path
                assert "secretGenerator" not in doc, path


def _kafka_topics(resources: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["spec"]["topicName"]: r for r in resources if r["kind"] == "KafkaTopic"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_topic_has_a_well_formed_kafka_topic(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    """Every topic of shared.topics, source and DLQ, and no other, is a Strimzi KafkaTopic
    (v1beta2, labelled with its cluster) with the same partitions and config: the sources
    with the overlay's KAFKA_PARTITIONS (the value the provisioning Job creates them with),
    the DLQs with one; the production overlay replicates 3 times with min.insync.replicas
    2, local once with 1."""
    resources = rendered[overlay]
    specs = _topics_of(resources)
    topics = _kafka_topics(resources)
    assert set(topics) == {t.name for t in specs}
    assert {dlq_of(t.name) for t in specs if not t.name.endswith(".dlq")} <= set(topics)
    replicas, min_isr = (3, "2") if overlay == "production" else (1, "1")
    for spec in specs:
        resource = topics[spec.name]
        assert resource["apiVersion"] == STRIMZI
        assert resource["kind"] == "KafkaTopic"
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", resource["metadata"]["name"])
        assert resource["metadata"]["labels"]["strimzi.io/cluster"] == "gwangsan"
        assert resource["metadata"]["namespace"] == "gwangsan"
        assert set(resource["spec"]) == {"topicName", "partitions", "replicas", "config"}
        assert resource["spec"]["partitions"] == spec.partitions
        assert resource["spec"]["replicas"] == replicas
        config = {k: str(v) for k, v in resource["spec"]["config"].items()}
        assert config == {**spec.config, "min.insync.replicas": min_isr}
    job = _by_kind(resources, "Job")["gwangsan-provision"]
    [container] = _containers(job)
    ref = _env(container)["KAFKA_PARTITIONS"]["valueFrom"]["configMapKeyRef"]
    assert ref["key"] == "KAFKA_PARTITIONS"
    assert ref["name"] == next(r for r in resources if r["kind"] == "ConfigMap")["metadata"]["name"]


def test_raising_kafka_partitions_in_the_overlay_raises_every_source_topic(
    tmp_path: Path,
) -> None:
    """KAFKA_PARTITIONS is one setting in deploy/ too: a copy of deploy/k8s whose
    production overlay says 12 renders every source KafkaTopic with 12 partitions and every
    DLQ still with one, and hands 12 to the provisioning Job's ConfigMap."""
    _tool(dc.kustomize)
    copy = tmp_path / "k8s"
    shutil.copytree(dc.K8S, copy)
    overlay = copy / "overlays" / "production" / "kustomization.yaml"
    text = overlay.read_text()
    assert text.count("- KAFKA_PARTITIONS=6") == 1
    overlay.write_text(text.replace("- KAFKA_PARTITIONS=6", "- KAFKA_PARTITIONS=12"))
    resources = dc.render(copy / "overlays" / "production")
    assert _config(resources)["KAFKA_PARTITIONS"] == "12"
    found = {name: r["spec"]["partitions"] for name, r in _kafka_topics(resources).items()}
    assert found == {t.name: t.partitions for t in topic_specs(12)}
    assert {n for n, p in found.items() if p == 12} == {
        t.name for t in topic_specs(12) if not t.name.endswith(".dlq")
    }


# --- Kafka security (issue 21, decision 0010) -----------------------------------------------


def test_kafka_users_file_is_generated_from_the_acl_table() -> None:
    """deploy/k8s/base/kafka-users.yaml is the current rendering of shared/topics.py ACCESS
    (regenerate with `.venv/bin/python -m tools.kafka_users > deploy/k8s/base/kafka-users.yaml`)."""
    path = dc.K8S / "base" / "kafka-users.yaml"
    assert path.read_text() == kafka_users.render()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_service_is_a_scram_kafka_user_with_exactly_the_tables_acls(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    users = _by_kind(rendered[overlay], "KafkaUser")
    assert set(users) == {*ACCESS, ADMIN_USER}
    for name, user in users.items():
        assert user["apiVersion"] == STRIMZI
        assert user["metadata"]["labels"]["strimzi.io/cluster"] == "gwangsan"
        assert user["metadata"]["namespace"] == "gwangsan"
        assert user["spec"]["authentication"] == {"type": "scram-sha-512"}
        if name == ADMIN_USER:
            assert "authorization" not in user["spec"]  # a super user of the cluster
            continue
        authorization = user["spec"]["authorization"]
        assert authorization["type"] == "simple"
        found = {
            (acl["resource"]["type"], acl["resource"]["name"], acl["resource"]["patternType"], op)
            for acl in authorization["acls"]
            for op in acl["operations"]
        }
        assert all(acl["host"] == "*" for acl in authorization["acls"])
        expected = {(r.resource_type, r.name, r.pattern, r.operation) for r in acl_rules(name)}
        assert found == expected, name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_services_connect_as_their_own_kafka_user_over_tls(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    """Every Deployment and the provisioning Job: SASL_SSL from the ConfigMap, its own user
    name, the password from that KafkaUser's Secret, and Strimzi's cluster CA mounted at
    the path KAFKA_SSL_CAFILE names."""
    resources = rendered[overlay]
    config = next(iter(_by_kind(resources, "ConfigMap").values()))["data"]
    assert config["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert config["KAFKA_BOOTSTRAP_SERVERS"].endswith(":9093")
    workloads = [
        *((_service_of(d), d) for d in _by_kind(resources, "Deployment").values()),
        (ADMIN_USER, _by_kind(resources, "Job")["gwangsan-provision"]),
    ]
    for user, workload in workloads:
        [container] = _containers(workload)
        env = _env(container)
        assert env["KAFKA_SASL_USERNAME"]["value"] == user
        assert env["KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
            "name": user,
            "key": "password",
        }
        mounts = {m["name"]: m for m in container["volumeMounts"]}
        assert config["KAFKA_SSL_CAFILE"] == mounts["kafka-ca"]["mountPath"] + "/ca.crt"
        volumes = {v["name"]: v for v in workload["spec"]["template"]["spec"]["volumes"]}
        assert volumes["kafka-ca"]["secret"]["secretName"] == "gwangsan-cluster-ca-cert"


def test_the_kafka_cluster_has_only_a_tls_scram_listener_and_simple_authorization() -> None:
    _tool(dc.kustomize)
    resources = dc.render(dc.K8S / "kafka")
    [cluster] = [r for r in resources if r["kind"] == "Kafka"]
    assert cluster["apiVersion"] == STRIMZI and cluster["metadata"]["name"] == "gwangsan"
    kafka = cluster["spec"]["kafka"]
    [listener] = kafka["listeners"]
    assert listener["tls"] is True
    assert listener["authentication"] == {"type": "scram-sha-512"}
    assert listener["port"] == 9093
    assert kafka["authorization"] == {"type": "simple", "superUsers": [ADMIN_USER]}
    assert kafka["config"]["allow.everyone.if.no.acl.found"] is False
    assert "userOperator" in cluster["spec"]["entityOperator"]


# --- Prometheus -----------------------------------------------------------------------------


def _promtool(*args: str, cwd: Path) -> str:
    result = dc.run(_tool(dc.promtool), *args, cwd=cwd)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load((dc.PROMETHEUS / "alerts.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_alert_rules_pass_promtool_check_rules() -> None:
    """`promtool check rules deploy/prometheus/alerts.yml` succeeds."""
    out = _promtool("check", "rules", "alerts.yml", cwd=dc.PROMETHEUS)
    assert f"SUCCESS: {len(_alert_rules())} rules found" in out


def test_alert_unit_tests_pass() -> None:
    """`promtool test rules alerts_test.yml` passes, and it tests at least the DLQ and the
    outbox alerts."""
    _promtool("test", "rules", "alerts_test.yml", cwd=dc.PROMETHEUS)
    cases = yaml.safe_load((dc.PROMETHEUS / "alerts_test.yml").read_text())["tests"]
    tested = {t["alertname"] for case in cases for t in case["alert_rule_test"]}
    assert {"GwangsanDeadLetters", "GwangsanOutboxBacklogOld"} <= tested


def test_prometheus_config_passes_promtool_check_config(tmp_path: Path) -> None:
    """`promtool check config` accepts deploy/prometheus/prometheus.yml (which loads
    alerts.yml beside it) and it scrapes one job per service."""
    shutil.copy(dc.PROMETHEUS / "prometheus.yml", tmp_path / "prometheus.yml")
    shutil.copy(dc.PROMETHEUS / "alerts.yml", tmp_path / "alerts.yml")
    _promtool("check", "config", "prometheus.yml", cwd=tmp_path)
    config = yaml.safe_load((dc.PROMETHEUS / "prometheus.yml").read_text())
    assert [job["job_name"] for job in config["scrape_configs"]] == list(SERVICES)


def test_alerts_use_known_metrics_and_link_their_runbook() -> None:
    """Every alert uses only metrics of shared/metrics.py (and `up`), has a severity, a
    summary, a description and a runbook_url into docs/operations.md whose anchor is listed,
    with the alert, in RUNBOOK_ANCHORS.md; the alerts the brief asks for all exist."""
    known = dc.exposed_metric_names() | {"up"}
    anchors_doc = (dc.PROMETHEUS / "RUNBOOK_ANCHORS.md").read_text()
    listed = dict(re.findall(r"^\| (Gwangsan\w+) \| `([a-z0-9-]+)` \|", anchors_doc, re.M))
    rules = _alert_rules()
    used: set[str] = set()
    for rule in rules:
        names = dc.metric_names_in(rule["expr"])
        assert names, rule["alert"]
        assert names <= known, f"{rule['alert']} uses unknown metrics {names - known}"
        used |= names
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}
        annotations = rule["annotations"]
        assert annotations["summary"] and annotations["description"]
        assert annotations["runbook_url"].startswith(RUNBOOK)
        anchor = annotations["runbook_url"].removeprefix(RUNBOOK)
        assert listed.get(rule["alert"]) == anchor, rule["alert"]
    assert set(listed) == {rule["alert"] for rule in rules}
    assert len(set(listed.values())) == len(listed), "anchors must be unique"
    assert {
        "up", "gwangsan_consumer_lag_messages", "gwangsan_dlq_messages_total",
        "gwangsan_outbox_oldest_age_seconds", "gwangsan_partner_notifications_total",
        "gwangsan_partner_notifications_pending", "gwangsan_budget_available_won",
        "gwangsan_budget_total_won", "gwangsan_http_requests_total",
    } <= used  # fmt: skip


def test_the_metric_name_check_catches_unknown_names() -> None:
    """The PromQL scan behind the metric checks finds metric names and only them: labels,
    strings, ranges, functions and Grafana variables are not mistaken for metrics."""
    expr = (
        "histogram_quantile(0.99, sum by (service, le) (rate(gwangsan_http_request_seconds_bucket"
        '{service=~"$service", route!="up"}[$__rate_interval]))) / on (service) group_left'
        " max without (instance) (up offset 5m) * 1e3 > bool 0 unless absent(nope_total)"
    )
    assert dc.metric_names_in(expr) == {"gwangsan_http_request_seconds_bucket", "up", "nope_total"}
    assert "gwangsan_http_request_seconds_bucket" in dc.exposed_metric_names()
    assert "gwangsan_http_request_seconds" not in dc.exposed_metric_names()


# --- Kubernetes monitoring ------------------------------------------------------------------


def test_monitoring_kustomization_scrapes_the_services_and_carries_the_alerts() -> None:
    """deploy/k8s/monitoring renders a PodMonitor selecting the `metrics` port of every
    Deployment's pods in both overlays, of every role (the production matcher worker too),
    but not the provisioning Job's (job = service name, pod_ready label), and a
    PrometheusRule equal to alerts.yml."""
    _tool(dc.kustomize)
    resources = dc.render(dc.K8S / "monitoring")
    [monitor] = [r for r in resources if r["kind"] == "PodMonitor"]
    [rule] = [r for r in resources if r["kind"] == "PrometheusRule"]
    assert monitor["apiVersion"] == rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["spec"]["jobLabel"] == "app.kubernetes.io/name"
    [endpoint] = monitor["spec"]["podMetricsEndpoints"]
    assert (endpoint["port"], endpoint["path"]) == ("metrics", "/metrics")
    assert {"sourceLabels": ["__meta_kubernetes_pod_ready"], "targetLabel": "pod_ready"} in (
        endpoint["relabelings"]
    )
    selector = monitor["spec"]["selector"]
    jobs: dict[str, set[str]] = {}
    for overlay in OVERLAYS:
        overlay_resources = dc.render(dc.K8S / "overlays" / overlay)
        for name, deployment in _by_kind(overlay_resources, "Deployment").items():
            labels = _pod_labels(deployment)
            assert _selects(selector, labels), f"{overlay}: {name} is not scraped"
            jobs.setdefault(overlay, set()).add(labels[monitor["spec"]["jobLabel"]])
        job = _by_kind(overlay_resources, "Job")["gwangsan-provision"]
        assert not _selects(selector, job["spec"]["template"]["metadata"]["labels"])
    assert jobs == {overlay: set(SERVICES) for overlay in OVERLAYS}
    assert rule["spec"] == dc.prometheus_rule()["spec"]
    assert dc.PROMETHEUS_RULE.read_text() == dc.prometheus_rule_text(), (
        "stale: run `.venv/bin/python -m tests.deploy.deploy_check`"
    )


# --- Grafana --------------------------------------------------------------------------------


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    panels: list[dict[str, Any]] = []
    for panel in dashboard["panels"]:
        panels.append(panel)
        panels.extend(panel.get("panels", []))
    return panels


def test_dashboard_uses_known_metrics_unique_ids_and_the_datasource_variable() -> None:
    """dashboard.json (schemaVersion >= 39) has unique panel ids, every query uses the
    ${DS_PROMETHEUS} data source and only metrics of shared/metrics.py, and it covers the
    panels the brief lists."""
    dashboard = json.loads((dc.DEPLOY / "grafana" / "dashboard.json").read_text())
    assert dashboard["schemaVersion"] >= 39
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource"
    assert variables["DS_PROMETHEUS"]["query"] == "prometheus"
    panels = _panels(dashboard)
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    known = dc.exposed_metric_names()
    exprs: list[str] = []
    for panel in panels:
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
        assert panel["targets"], panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"]
            names = dc.metric_names_in(target["expr"])
            assert names, f"{panel['title']}: no metric in {target['expr']}"
            assert names <= known, f"{panel['title']}: unknown metrics {names - known}"
            exprs.append(target["expr"])
    text = "\n".join(exprs)
    for needed in (
        "gwangsan_http_request_seconds_bucket", 'status=~"5.."', "gwangsan_consumer_lag_messages",
        "gwangsan_matcher_decisions_total", "gwangsan_events_handled_total",
        "gwangsan_dlq_messages_total", "gwangsan_outbox_backlog_rows",
        "gwangsan_outbox_oldest_age_seconds", "gwangsan_partner_notifications_total",
        "gwangsan_budget_available_won", "gwangsan_budget_total_won",
        "increase(gwangsan_payouts_accrued_won_total[1d])",
        "increase(gwangsan_payouts_capped_won_total[1d])",
    ):  # fmt: skip
        assert needed in text, needed


def test_grafana_provisioning_loads_the_dashboard_and_a_prometheus_datasource() -> None:
    """The provisioning files are Grafana's format: one Prometheus data source, and a file
    provider for the dashboards folder."""
    provisioning = dc.DEPLOY / "grafana" / "provisioning"
    datasources = yaml.safe_load((provisioning / "datasources.yml").read_text())
    assert datasources["apiVersion"] == 1
    [source] = datasources["datasources"]
    assert source["type"] == "prometheus" and source["url"].startswith("http")
    dashboards = yaml.safe_load((provisioning / "dashboards.yml").read_text())
    assert dashboards["apiVersion"] == 1
    [provider] = dashboards["providers"]
    assert provider["type"] == "file" and provider["options"]["path"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_deny_by_default_and_cover_every_pod(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    """Every pod of the namespace is denied in and out unless a policy allows it (an empty
    podSelector with both types and no rules), and every Deployment's and Job's pods are
    selected by a policy that allows their traffic; only the matcher's pods may leave the
    cluster on 443 (partner notifications)."""
    policies = _by_kind(rendered[overlay], "NetworkPolicy")
    deny = policies["default-deny"]["spec"]
    assert deny["podSelector"] == {} and set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny and "egress" not in deny
    workloads = [
        *_by_kind(rendered[overlay], "Deployment").values(),
        *_by_kind(rendered[overlay], "Job").values(),
    ]
    for workload in workloads:
        labels = workload["spec"]["template"]["metadata"]["labels"]
        allowing = [
            name
            for name, p in policies.items()
            if name != "default-deny" and _selects(p["spec"]["podSelector"], labels)
        ]
        assert allowing, f"{workload['metadata']['name']}: no policy allows its traffic"
        https_out = any(
            port.get("port") == 443
            for name in allowing
            for rule in policies[name]["spec"].get("egress", [])
            for port in rule.get("ports", [])
        )
        assert https_out == labels["app.kubernetes.io/name"].startswith("matcher"), labels


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_ingress_is_tls_and_routes_only_public_paths(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    """The Ingress serves TLS and routes the webhooks/pull API, the consoles and the
    facility API only: never /metrics, the API docs or an admin API."""
    ingress = _by_kind(rendered[overlay], "Ingress")["gwangsan"]
    assert ingress["spec"]["tls"] and ingress["spec"]["tls"][0]["secretName"]
    paths = [p["path"] for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]]
    assert paths, "the Ingress routes nothing"
    for path in paths:
        for private in ("/metrics", "/docs", "/redoc", "/openapi.json", "/v1/admin", "/asyncapi"):
            assert not private.startswith(path.rstrip("/") or "/"), (path, private)
    assert "/v1/partner/" in paths and "/console" in paths and "/finance" in paths


def _ingress_rules_reaching(
    policies: dict[str, dict[str, Any]], labels: dict[str, str], port: dict[str, Any]
) -> list[dict[str, Any]]:
    """The NetworkPolicy ingress rules that let traffic in to a pod with `labels` on the
    container port `port` (a rule without `ports` allows every port)."""
    rules = []
    for policy in policies.values():
        if not _selects(policy["spec"]["podSelector"], labels):
            continue
        for rule in policy["spec"].get("ingress", []):
            ports = rule.get("ports")
            if ports is None or any(
                p.get("port") in (port["name"], port["containerPort"]) for p in ports
            ):
                rules.append(rule)
    return rules


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_metrics_are_on_their_own_port_reachable_only_from_monitoring(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    """Every Deployment (of every role) serves /metrics on the container port `metrics`
    (METRICS_PORT, its scrape annotation), apart from the API port; no Service exposes that
    port and the Ingress routes only to Services' `http` ports; the NetworkPolicies let only
    the monitoring namespace in to it, and the ingress controller only to `http`."""
    resources = rendered[overlay]
    policies = _by_kind(resources, "NetworkPolicy")
    services = _by_kind(resources, "Service")
    for name, deployment in _by_kind(resources, "Deployment").items():
        [container] = _containers(deployment)
        ports = {p["name"]: p for p in container["ports"]}
        assert set(ports) == {"http", "metrics"}, name
        assert ports["metrics"]["containerPort"] == METRICS_PORT != ports["http"]["containerPort"]
        assert _env(container)["METRICS_PORT"]["value"] == str(METRICS_PORT), name
        labels = _pod_labels(deployment)
        metrics_rules = _ingress_rules_reaching(policies, labels, ports["metrics"])
        assert metrics_rules, f"{name}: Prometheus cannot reach the metrics port"
        for rule in metrics_rules:
            assert rule.get("from"), f"{name}: the metrics port is open to every source"
            for peer in rule["from"]:
                assert peer == {
                    "namespaceSelector": {
                        "matchLabels": {"kubernetes.io/metadata.name": "monitoring"}
                    }
                }, f"{name}: the metrics port is open to {peer}"
        http_rules = _ingress_rules_reaching(policies, labels, ports["http"])
        assert any(
            peer.get("namespaceSelector", {}).get("matchLabels", {}).get(
                "kubernetes.io/metadata.name"
            ) == "ingress-nginx"
            for rule in http_rules for peer in rule.get("from", [])
        ), f"{name}: the ingress controller cannot reach the API port"  # fmt: skip
    for svc in services.values():
        for port in svc["spec"]["ports"]:
            assert port["targetPort"] not in ("metrics", METRICS_PORT), svc["metadata"]["name"]
            assert port["port"] != METRICS_PORT, svc["metadata"]["name"]
    ingress = _by_kind(resources, "Ingress")["gwangsan"]
    for rule in ingress["spec"]["rules"]:
        for path in rule["http"]["paths"]:
            backend = path["backend"]["service"]
            assert backend["port"] == {"name": "http"}, path
            [target] = [p for p in services[backend["name"]]["spec"]["ports"]
                        if p["name"] == "http"]  # fmt: skip
            assert target["targetPort"] == "http", path
