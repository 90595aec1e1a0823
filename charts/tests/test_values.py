"""The values contract: the Ingress follows store.host and ingress.*, and values.schema.json turns
wrong types into a helm error before anything reaches a cluster."""

from __future__ import annotations

from typing import Any

import pytest

from charts.tests.rendering import HelmTemplateError, by_kind, render_chart
from charts.tests.support import CHARTS, HELMS, ci_values

HOSTS = {"local": "demo.127.0.0.1.nip.io", "prod": "demo.203.0.113.10.nip.io"}
CLASSES = {"local": "nginx", "prod": "traefik"}
WEB_SERVICE = {"woocommerce": ("wordpress", "http"), "medusa": ("medusa", "http")}


def _site_urls(manifests: list[dict[str, Any]]) -> set[str]:
    """Every URL-like env value the store's processes are given."""
    text = str([m for m in manifests if m["kind"] in {"Deployment", "Job", "CronJob"}])
    return {part.split("'")[0] for part in text.split("://")[1:]}


def test_ingress_host_class_and_tls(store: tuple[str, str, list[dict[str, Any]]]) -> None:
    chart, ci, manifests = store
    (ingress,) = by_kind(manifests, "Ingress")
    spec = ingress["spec"]
    (rule,) = spec["rules"]
    (path,) = rule["http"]["paths"]

    assert rule["host"] == HOSTS[ci]
    assert spec["ingressClassName"] == CLASSES[ci]
    assert path["path"] == "/"
    assert path["pathType"] == "Prefix"
    name, port = WEB_SERVICE[chart]
    assert path["backend"]["service"] == {"name": name, "port": {"name": port}}
    if ci == "prod":
        assert spec["tls"] == [{"hosts": [HOSTS[ci]], "secretName": "demo-tls"}]
        assert ingress["metadata"]["annotations"] == {"cert-manager.io/cluster-issuer": "letsencrypt"}
    else:
        assert "tls" not in spec
        assert "annotations" not in ingress["metadata"]


@pytest.mark.parametrize("chart", CHARTS)
def test_another_store_gets_its_own_host_and_names(chart: str) -> None:
    values = {"store": {"name": "shop-42", "host": "shop-42.example.com"}, "ingress": {"tls": True}}
    manifests = render_chart(chart, [ci_values(chart, "local")], values=values, namespace="store-shop-42")
    (ingress,) = by_kind(manifests, "Ingress")

    assert ingress["spec"]["rules"][0]["host"] == "shop-42.example.com"
    assert ingress["spec"]["tls"][0]["secretName"] == "shop-42-tls"
    assert {m["metadata"]["labels"]["platform.example/store"] for m in manifests} == {"shop-42"}
    assert {m["metadata"]["namespace"] for m in manifests} == {"store-shop-42"}
    assert "https://shop-42.example.com" in str(manifests)
    assert "http://shop-42.example.com" not in str(manifests)


BAD_VALUES = [
    pytest.param({"ingress": {"tls": "yes"}}, "tls", id="tls-not-boolean"),
    pytest.param({"store": {"name": "Demo_Store"}}, "name", id="name-not-rfc1123"),
    pytest.param({"store": {"name": "a" * 58}}, "name", id="name-too-long"),
    pytest.param({"store": {"host": "demo.example.com/evil"}}, "host", id="host-with-path"),
    pytest.param({"quota": {"memory": 1024}}, "memory", id="memory-not-string"),
    pytest.param({"quota": {"cpu": "lots"}}, "cpu", id="cpu-not-quantity"),
    pytest.param({"network": {"clusterCIDRs": "10.0.0.0/8"}}, "clusterCIDRs", id="cidrs-not-list"),
    pytest.param({"ingress": {"controller": {"podLabels": {"app": 5}}}}, "podLabels", id="label-not-string"),
    pytest.param({"ingress": {"controller": {"namespace": None}}}, "namespace", id="no-controller-namespace"),
    pytest.param({"existingSecret": ""}, "existingSecret", id="empty-secret-name"),
    pytest.param({"adminPassword": "x"}, "adminPassword", id="unknown-key"),
    pytest.param({"network": {"clusterCIDRs": ["10.0.0.0/33"]}}, "clusterCIDRs", id="cluster-cidr-prefix"),
    pytest.param(
        {"backup": {"egress": {"cidrs": ["10.0.0.256/32"], "port": 443}}}, "cidrs", id="backup-cidr-octet"
    ),
    pytest.param(
        {"backup": {"egress": {"cidrs": ["s3.example.com"], "port": 443}}}, "cidrs", id="backup-cidr-host"
    ),
    pytest.param(
        {"backup": {"egress": {"cidrs": ["10.0.0.1/32"], "port": 0}}}, "port", id="backup-port-zero"
    ),
    pytest.param(
        {"backup": {"egress": {"cidrs": ["10.0.0.1/32"], "port": 65536}}}, "port", id="backup-port-high"
    ),
    pytest.param(
        {"backup": {"egress": {"cidrs": ["10.0.0.1/32"], "port": "443"}}}, "port", id="backup-port-string"
    ),
]


@pytest.mark.parametrize("helm", sorted(HELMS))
@pytest.mark.parametrize(("values", "field"), BAD_VALUES)
@pytest.mark.parametrize("chart", CHARTS)
def test_wrong_values_fail_with_a_schema_message(
    chart: str, values: dict[str, Any], field: str, helm: str
) -> None:
    with pytest.raises(HelmTemplateError) as error:
        render_chart(chart, [ci_values(chart, "local")], values=values, helm=str(HELMS[helm]))

    assert "schema" in error.value.stderr
    assert field in error.value.stderr


def test_integer_cpu_quota_is_accepted() -> None:
    manifests = render_chart("medusa", [ci_values("medusa", "local")], values={"quota": {"cpu": 2}})
    (quota,) = by_kind(manifests, "ResourceQuota")

    assert quota["spec"]["hard"]["limits.cpu"] == "2"
