"""Quota arithmetic: the busiest moment of each store (every pod, init container, hook Job, CronJob
pod and rollout surge at once) fits the namespace ResourceQuota, and an oversized store does not."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes.client import ApiClient

from charts.tests.footprint import (
    Footprint,
    concurrent_pods,
    parse_quantity,
    peak_footprint,
    pod_footprint,
    quota_footprint,
    quota_violations,
)
from charts.tests.rendering import by_kind, pod_spec, render_chart
from charts.tests.support import CHARTS_DIR, QUOTA, ci_values
from provisioning.backup_jobs import job_manifest
from provisioning.tests.test_backup_jobs import backup_spec

WORKLOADS = {
    "woocommerce": {"Deployment/wordpress", "StatefulSet/mariadb", "Job/wp-setup"},
    "medusa": {"Deployment/medusa", "StatefulSet/postgres", "Deployment/redis", "Job/medusa-bootstrap"},
}
OVERSIZED = {
    "woocommerce": {"resources": {"wordpress": {"limits": {"cpu": "800m", "memory": "768Mi"}}}},
    "medusa": {"resources": {"medusa": {"limits": {"cpu": "1500m", "memory": "1536Mi"}}}},
}


def test_store_fits_its_quota(store: tuple[str, str, list[dict[str, Any]]]) -> None:
    chart, _, manifests = store

    assert quota_violations(manifests) == []
    assert set(peak_footprint(manifests)) == WORKLOADS[chart]


def test_a_backup_job_fits_beside_the_running_store(store: tuple[str, str, list[dict[str, Any]]]) -> None:
    # A backup runs while the store serves: every long-running pod (the wp-cron sidecar included, it
    # is always there) plus the backup Job's pod must fit the quota, or admission refuses the backup.
    chart, _, manifests = store
    running = sum(
        (
            pod_footprint(pod_spec(obj)).times(int(obj["spec"].get("replicas", 1)))
            for obj in manifests
            if obj["kind"] in {"Deployment", "StatefulSet"}
        ),
        Footprint(),
    )
    job = ApiClient().sanitize_for_serialization(job_manifest(backup_spec("backup", chart)))
    backup = pod_footprint(job["spec"]["template"]["spec"])
    quota = quota_footprint(manifests)

    total = running + backup
    for field in ("requests_cpu", "limits_cpu", "requests_memory", "limits_memory"):
        assert getattr(total, field) <= getattr(quota, field), (field, running, backup, quota)


def test_quota_is_the_engine_default(store: tuple[str, str, list[dict[str, Any]]]) -> None:
    chart, _, manifests = store
    (quota,) = by_kind(manifests, "ResourceQuota")
    hard = quota["spec"]["hard"]
    cpu, memory = QUOTA[chart]

    assert hard["requests.cpu"] == hard["limits.cpu"] == cpu
    assert hard["requests.memory"] == hard["limits.memory"] == memory
    assert hard["requests.storage"] == "10Gi"
    assert int(hard["persistentvolumeclaims"]) <= 4
    assert hard["services.loadbalancers"] == "0"
    assert hard["services.nodeports"] == "0"
    assert int(hard["pods"]) > 0


def test_limit_range_gives_every_container_defaults(store: tuple[str, str, list[dict[str, Any]]]) -> None:
    _, _, manifests = store
    (limit_range,) = by_kind(manifests, "LimitRange")
    (limits,) = limit_range["spec"]["limits"]

    assert limits["type"] == "Container"
    assert {"cpu", "memory"} <= limits["default"].keys()
    assert {"cpu", "memory"} <= limits["defaultRequest"].keys()


@pytest.mark.parametrize("chart", sorted(OVERSIZED))
def test_oversized_values_are_caught(chart: str) -> None:
    manifests = render_chart(chart, [ci_values(chart, "local")], values=OVERSIZED[chart])

    violations = quota_violations(manifests)

    assert any(v.startswith("limits_memory") for v in violations), violations
    assert any(v.startswith("limits_cpu") for v in violations), violations


def test_oversized_values_file_is_caught() -> None:
    manifests = render_chart(
        "woocommerce", [ci_values("woocommerce", "local"), CHARTS_DIR / "tests" / "oversized-values.yaml"]
    )

    assert quota_violations(manifests) != []


def test_too_much_storage_is_caught() -> None:
    manifests = render_chart(
        "medusa", [ci_values("medusa", "local")], values={"persistence": {"postgres": {"size": "20Gi"}}}
    )

    assert quota_violations(manifests) == ["requests.storage: 21474836480 > 10Gi"]


def test_init_containers_count_by_their_peak_not_their_sum() -> None:
    def container(name: str, cpu: str, memory: str) -> dict[str, Any]:
        amount = {"cpu": cpu, "memory": memory}
        return {"name": name, "resources": {"requests": amount, "limits": amount}}

    spec = {
        "initContainers": [container("a", "1", "1Gi"), container("b", "200m", "2Gi")],
        "containers": [container("c", "500m", "256Mi"), container("d", "250m", "256Mi")],
    }

    assert pod_footprint(spec) == Footprint(1000, 1000, 2048, 2048)


def test_rolling_update_surge_is_counted() -> None:
    deployment = {"kind": "Deployment", "spec": {"replicas": 2, "strategy": {"type": "RollingUpdate"}}}
    recreate = {"kind": "Deployment", "spec": {"replicas": 2, "strategy": {"type": "Recreate"}}}
    default = {"kind": "Deployment", "spec": {"replicas": 1}}

    assert concurrent_pods(deployment) == 3
    assert concurrent_pods(recreate) == 2
    assert concurrent_pods(default) == 2


def test_overlapping_cronjob_is_refused() -> None:
    cronjob = {"kind": "CronJob", "metadata": {"name": "x"}, "spec": {"concurrencyPolicy": "Allow"}}

    with pytest.raises(AssertionError, match="may overlap"):
        concurrent_pods(cronjob)


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [("1", 1.0), ("250m", 0.25), ("1.5", 1.5), ("512Mi", 512 * 2**20), ("1Gi", 2**30), ("1G", 10**9)],
)
def test_parse_quantity(quantity: str, expected: float) -> None:
    assert parse_quantity(quantity) == expected
