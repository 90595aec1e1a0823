"""Custom domains in both store charts: one Ingress rule, one TLS entry and one cert-manager
Certificate per verified domain, strictly valid (built-in kinds for 1.29 and 1.35, Certificates
against cert-manager's own CRD), and values.schema.json refusing what the platform never sends."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from charts.tests.rendering import CHARTS_DIR, HelmTemplateError, by_kind, find, render_chart, run_helm
from charts.tests.support import CHARTS, CI_VALUES, HELMS, ci_values
from charts.tests.test_kubernetes_schema import KUBERNETES_VERSIONS
from testkit.cert_manager import validate_strictly

HOSTS = ["shop.example.com", "xn--bcher-kva.example"]
DOMAINS = {"domains": {"hosts": HOSTS, "clusterIssuer": "store-platform-local-ca"}}
WEB = {"woocommerce": "wordpress", "medusa": "medusa"}


def _render(
    chart: str, ci: str, values: dict[str, Any] = DOMAINS, helm: str | None = None
) -> list[dict[str, Any]]:
    return render_chart(chart, [ci_values(chart, ci)], values=values, helm=helm)


@pytest.mark.parametrize("ci", CI_VALUES)
@pytest.mark.parametrize("chart", CHARTS)
def test_each_domain_gets_a_rule_tls_and_certificate(chart: str, ci: str) -> None:
    manifests = _render(chart, ci)
    domains = find(manifests, "Ingress", f"{WEB[chart]}-domains")
    certificates = by_kind(manifests, "Certificate")

    assert [rule["host"] for rule in domains["spec"]["rules"]] == HOSTS
    for rule in domains["spec"]["rules"]:
        (path,) = rule["http"]["paths"]
        assert path["backend"]["service"] == {"name": WEB[chart], "port": {"name": "http"}}
    # No ingress-shim annotation here: it would make a second Certificate for the same Secret.
    assert "annotations" not in domains["metadata"]
    by_host = {cert["spec"]["dnsNames"][0]: cert for cert in certificates}
    assert sorted(by_host) == sorted(HOSTS)
    for tls in domains["spec"]["tls"]:
        (host,) = tls["hosts"]
        cert = by_host[host]
        assert cert["spec"]["dnsNames"] == [host]
        assert cert["spec"]["secretName"] == tls["secretName"]
        assert cert["spec"]["issuerRef"] == {
            "group": "cert-manager.io",
            "kind": "ClusterIssuer",
            "name": "store-platform-local-ca",
        }
        assert cert["metadata"]["namespace"] == "store-demo"
    assert len({cert["metadata"]["name"] for cert in certificates}) == len(HOSTS)


@pytest.mark.parametrize("chart", CHARTS)
def test_the_store_hosts_ingress_is_unchanged_by_domains(chart: str) -> None:
    with_domains = find(_render(chart, "prod"), "Ingress", WEB[chart])
    without = find(_render(chart, "prod", values={}), "Ingress", WEB[chart])
    assert with_domains == without


@pytest.mark.parametrize("ci", CI_VALUES)
@pytest.mark.parametrize("chart", CHARTS)
def test_no_domains_renders_no_domain_objects(chart: str, ci: str) -> None:
    manifests = _render(chart, ci, values={"domains": {"hosts": [], "clusterIssuer": "x"}})
    assert by_kind(manifests, "Certificate") == []
    assert [ingress["metadata"]["name"] for ingress in by_kind(manifests, "Ingress")] == [WEB[chart]]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("ci", CI_VALUES)
@pytest.mark.parametrize("chart", CHARTS)
def test_objects_with_domains_validate_strictly(chart: str, ci: str, version: str) -> None:
    manifests = _render(chart, ci)
    assert by_kind(manifests, "Certificate")
    for obj in manifests:
        if obj["apiVersion"].startswith("cert-manager.io/"):
            validate_strictly(obj)
        else:
            kubernetes_validate.validate(obj, version, strict=True)


def test_crd_validation_catches_an_unknown_field() -> None:
    (cert, *_) = by_kind(_render("woocommerce", "local"), "Certificate")
    cert["spec"]["issuerRefs"] = cert["spec"].pop("issuerRef")
    with pytest.raises(jsonschema.ValidationError):
        validate_strictly(cert)


@pytest.mark.parametrize("helm", sorted(HELMS))
@pytest.mark.parametrize("chart", CHARTS)
def test_lint_strict_passes_with_domains(chart: str, helm: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        extra = Path(tmp) / "domains.yaml"
        extra.write_text(yaml.safe_dump(DOMAINS))
        result = run_helm(
            [
                "lint",
                "--strict",
                str(CHARTS_DIR / chart),
                "-f",
                str(ci_values(chart, "prod")),
                "-f",
                str(extra),
            ],
            helm=str(HELMS[helm]),
        )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[WARNING]" not in result.stdout


BAD_DOMAINS = [
    pytest.param({"hosts": ["Shop.example.com"]}, "hosts", id="upper-case"),
    pytest.param({"hosts": ["*.example.com"]}, "hosts", id="wildcard"),
    pytest.param({"hosts": ["192.0.2.1"]}, "hosts", id="ip"),
    pytest.param({"hosts": ["shop"]}, "hosts", id="single-label"),
    pytest.param({"hosts": ["bücher.example"]}, "hosts", id="unicode-not-punycode"),
    pytest.param({"hosts": ["a.example.com"] * 2}, "hosts", id="duplicate"),
    pytest.param({"hosts": [f"d{i}.example.com" for i in range(6)]}, "hosts", id="too-many"),
    pytest.param({"hosts": "shop.example.com"}, "hosts", id="not-a-list"),
    pytest.param({"clusterIssuer": ""}, "clusterIssuer", id="empty-issuer"),
    pytest.param({"issuer": "x"}, "issuer", id="unknown-key"),
]


@pytest.mark.parametrize("helm", sorted(HELMS))
@pytest.mark.parametrize(("domains", "field"), BAD_DOMAINS)
@pytest.mark.parametrize("chart", CHARTS)
def test_wrong_domains_fail_with_a_schema_message(
    chart: str, domains: dict[str, Any], field: str, helm: str
) -> None:
    with pytest.raises(HelmTemplateError) as error:
        _render(chart, "local", values={"domains": domains}, helm=str(HELMS[helm]))
    assert "schema" in error.value.stderr
    assert field in error.value.stderr
