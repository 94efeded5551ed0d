"""Helpers of tests/deploy/test_deploy.py: the tools it runs and what it checks against.

Run as `python -m tests.deploy.deploy_check` to regenerate deploy/k8s/monitoring/
prometheusrule.yaml from deploy/prometheus/alerts.yml (the test says when it is stale).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
PROMETHEUS = DEPLOY / "prometheus"
PROMETHEUS_RULE = K8S / "monitoring" / "prometheusrule.yaml"

# kustomize v5.8.1 built from the Go module proxy by `make setup`:
#   GOBIN=$PWD/.tools/bin go install sigs.k8s.io/kustomize/kustomize/v5@v5.8.1
KUSTOMIZE_INSTALL = "GOBIN=$PWD/.tools/bin go install sigs.k8s.io/kustomize/kustomize/v5@v5.8.1"


class ToolMissing(RuntimeError):
    """A tool the deploy checks run is not installed; the message says how to get it."""


def kustomize() -> str:
    """The kustomize binary: $KUSTOMIZE, then .tools/bin/kustomize, then the PATH."""
    for candidate in (os.environ.get("KUSTOMIZE"), str(ROOT / ".tools" / "bin" / "kustomize")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("kustomize")
    if found is None:
        raise ToolMissing(f"kustomize missing: `make setup` installs it ({KUSTOMIZE_INSTALL})")
    return found


def promtool() -> str:
    """promtool, from Debian's `prometheus` package."""
    found = shutil.which("promtool")
    if found is None:
        raise ToolMissing("promtool missing: `make setup` installs Debian's `prometheus` package")
    return found


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args), capture_output=True, text=True, cwd=cwd, timeout=120, check=False
    )


def render(kustomization_dir: Path) -> list[dict[str, Any]]:
    """`kustomize build` of a directory, as a list of resources."""
    result = run(kustomize(), "build", str(kustomization_dir))
    if result.returncode != 0:
        raise AssertionError(f"kustomize build {kustomization_dir} failed:\n{result.stderr}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


# --- metric names -------------------------------------------------------------------------

_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
}


def exposed_metric_names() -> set[str]:
    """Every series name the metrics of shared/metrics.py expose (with their suffixes)."""
    from prometheus_client.metrics import MetricWrapperBase

    from shared import metrics

    names: set[str] = set()
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            for family in value.describe():
                names.update(family.name + suffix for suffix in _SUFFIXES[family.type])
    return names


# PromQL functions and aggregation operators: identifiers that are not metric names.
_PROMQL_WORDS = {
    # aggregations
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
    "bottomk", "topk", "quantile", "limitk", "limit_ratio",
    # keywords
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
    "bool", "offset", "inf", "nan",
    # functions
    "abs", "absent", "absent_over_time", "ceil", "changes", "clamp", "clamp_max",
    "clamp_min", "day_of_month", "day_of_week", "day_of_year", "days_in_month", "delta",
    "deriv", "exp", "floor", "histogram_avg", "histogram_count", "histogram_fraction",
    "histogram_quantile", "histogram_stddev", "histogram_stdvar", "histogram_sum",
    "holt_winters", "hour", "idelta", "increase", "irate", "label_join", "label_replace",
    "ln", "log10", "log2", "minute", "month", "predict_linear", "rate", "resets", "round",
    "scalar", "sgn", "sort", "sort_desc", "sort_by_label", "sort_by_label_desc", "sqrt",
    "time", "timestamp", "vector", "year", "avg_over_time", "min_over_time",
    "max_over_time", "sum_over_time", "count_over_time", "quantile_over_time",
    "stddev_over_time", "stdvar_over_time", "last_over_time", "present_over_time",
    "acos", "acosh", "asin", "asinh", "atan", "atanh", "cos", "cosh", "sin", "sinh", "tan",
    "tanh", "deg", "rad", "pi",
}  # fmt: skip


def metric_names_in(expr: str) -> set[str]:
    """The metric names a PromQL expression (optionally with Grafana variables) selects."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)
    text = re.sub(r"\$\{[^}]*\}|\$\w+", "1", text)  # Grafana variables
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges and subqueries
    text = re.sub(
        r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", r"\1", text
    )  # label lists
    words = re.findall(r"(?<![\w.])[A-Za-z_:][\w:]*", text)
    return {w for w in words if w not in _PROMQL_WORDS}


# --- Prometheus Operator rule --------------------------------------------------------------


def prometheus_rule() -> dict[str, Any]:
    """deploy/prometheus/alerts.yml as a Prometheus Operator PrometheusRule."""
    alerts = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "gwangsan",
            "labels": {"app.kubernetes.io/part-of": "danggeun-gwangsan"},
        },
        "spec": {"groups": alerts["groups"]},
    }


def prometheus_rule_text() -> str:
    header = (
        "# GENERATED from deploy/prometheus/alerts.yml by `python -m tests.deploy.deploy_check`;\n"
        "# do not edit (tests/deploy/test_deploy.py fails when the two differ).\n"
    )
    body = yaml.safe_dump(prometheus_rule(), sort_keys=False, allow_unicode=True, width=100)
    return header + body


if __name__ == "__main__":
    PROMETHEUS_RULE.write_text(prometheus_rule_text())
    print(f"wrote {PROMETHEUS_RULE.relative_to(ROOT)}")
