"""`suspended: true`: both charts scale every workload to zero, keep the volumes, run no setup hook
and route the store's hosts (its own and its custom domains) to the platform's paused page."""

from __future__ import annotations

from typing import Any

import pytest

from charts.tests.rendering import CHARTS_DIR, HelmTemplateError, by_kind, find, render_chart, run_helm
from charts.tests.support import CHARTS, CI_VALUES, HELMS, ci_values

WEB = {"woocommerce": "wordpress", "medusa": "medusa"}
HOOK_JOB = {"woocommerce": "wp-setup", "medusa": "medusa-bootstrap"}
PAUSED = {"externalName": "platform-web.platform.svc.cluster.local", "port": 80}
DOMAINS = {"domains": {"hosts": ["shop.example.org"]}}


def _render(chart: str, ci: str, *, suspended: bool, helm: str | None = None) -> list[dict[str, Any]]:
    values = {"suspended": suspended, "paused": PAUSED, **DOMAINS}
    return render_chart(chart, [ci_values(chart, ci)], values=values, helm=helm)


def _backends(manifests: list[dict[str, Any]]) -> set[str]:
    return {
        path["backend"]["service"]["name"]
        for ingress in by_kind(manifests, "Ingress")
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    }


@pytest.mark.parametrize("ci", CI_VALUES)
@pytest.mark.parametrize("chart", CHARTS)
def test_suspended_store_has_no_replicas_and_keeps_its_volumes(chart: str, ci: str) -> None:
    running = _render(chart, ci, suspended=False)
    suspended = _render(chart, ci, suspended=True)
    workloads = [m for m in suspended if m["kind"] in {"Deployment", "StatefulSet"}]

    assert workloads, "the chart renders no workload"
    assert {m["metadata"]["name"]: m["spec"]["replicas"] for m in workloads} == {
        m["metadata"]["name"]: 0 for m in workloads
    }
    assert {m["spec"]["replicas"] for m in running if m["kind"] in {"Deployment", "StatefulSet"}} == {1}
    # The same claims as when running: standalone PVCs (kept on uninstall) and the StatefulSets' own.
    claims = lambda ms: (  # noqa: E731
        sorted(m["metadata"]["name"] for m in by_kind(ms, "PersistentVolumeClaim")),
        sorted(
            t["metadata"]["name"]
            for s in by_kind(ms, "StatefulSet")
            for t in s["spec"].get("volumeClaimTemplates", [])
        ),
    )
    assert claims(suspended) == claims(running)
    assert claims(suspended) != ([], [])


@pytest.mark.parametrize("ci", CI_VALUES)
@pytest.mark.parametrize("chart", CHARTS)
def test_suspended_store_routes_every_host_to_the_paused_service(chart: str, ci: str) -> None:
    running = _render(chart, ci, suspended=False)
    suspended = _render(chart, ci, suspended=True)
    paused = find(suspended, "Service", "store-paused")

    assert _backends(running) == {WEB[chart]}
    assert _backends(suspended) == {"store-paused"}
    assert len(by_kind(suspended, "Ingress")) == 2  # the store's host and its custom domains
    assert paused["spec"] == {
        "type": "ExternalName",
        "externalName": PAUSED["externalName"],
        "ports": [{"name": "http", "port": 80, "protocol": "TCP"}],
    }
    assert not [m for m in running if m["metadata"]["name"] == "store-paused"]
    # TLS is the same either way: the store's certificate keeps being served while it is paused.
    assert [i["spec"].get("tls") for i in by_kind(suspended, "Ingress")] == [
        i["spec"].get("tls") for i in by_kind(running, "Ingress")
    ]


@pytest.mark.parametrize("chart", CHARTS)
def test_suspended_store_runs_no_setup_hook_and_no_cron(chart: str) -> None:
    suspended = _render(chart, "local", suspended=True)

    assert HOOK_JOB[chart] not in {m["metadata"]["name"] for m in by_kind(suspended, "Job")}
    assert HOOK_JOB[chart] in {
        m["metadata"]["name"] for m in by_kind(_render(chart, "local", suspended=False), "Job")
    }
    # Scheduled work (WooCommerce's wp-cron sidecar) lives in a workload that scales to zero: nothing
    # runs against a database that is scaled to zero.
    assert by_kind(suspended, "CronJob") == []
    for workload in by_kind(suspended, "Deployment") + by_kind(suspended, "StatefulSet"):
        assert workload["spec"]["replicas"] == 0, workload["metadata"]["name"]


@pytest.mark.parametrize("helm", sorted(HELMS))
@pytest.mark.parametrize("chart", CHARTS)
def test_lint_strict_passes_suspended(chart: str, helm: str, tmp_path: Any) -> None:
    extra = tmp_path / "suspended.yaml"
    extra.write_text("suspended: true\n")
    result = run_helm(
        ["lint", "--strict", str(CHARTS_DIR / chart), "-f", str(ci_values(chart, "prod")), "-f", str(extra)],
        helm=str(HELMS[helm]),
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "[WARNING]" not in result.stdout


@pytest.mark.parametrize(
    ("values", "field"),
    [
        pytest.param({"suspended": "yes"}, "suspended", id="suspended-not-boolean"),
        pytest.param(
            {"paused": {"externalName": "http://x/", "port": 80}}, "externalName", id="url-not-host"
        ),
        pytest.param({"paused": {"externalName": "web.platform", "port": 0}}, "port", id="port-zero"),
    ],
)
@pytest.mark.parametrize("chart", CHARTS)
def test_wrong_suspension_values_fail_with_a_schema_message(
    chart: str, values: dict[str, Any], field: str
) -> None:
    with pytest.raises(HelmTemplateError) as error:
        render_chart(chart, [ci_values(chart, "local")], values=values)

    assert "schema" in error.value.stderr
    assert field in error.value.stderr
