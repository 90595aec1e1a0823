"""The primary custom domain in both store charts (the URL the shop calls itself by, CORS on every
host it is served on) and the ACME HTTP-01 solver NetworkPolicy."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from charts.tests.rendering import (
    CHARTS_DIR,
    HelmTemplateError,
    by_kind,
    containers,
    pod_spec,
    render_chart,
    run_helm,
)
from charts.tests.support import CHARTS, CI_VALUES, HELMS, ci_values
from charts.tests.test_kubernetes_schema import KUBERNETES_VERSIONS
from charts.tests.test_network import CONTROLLER

HOSTS = ["shop.example.com", "xn--bcher-kva.example"]
# The store host's URL as each CI values file gives it (local: http, prod: https).
PLATFORM_URL = {"local": "http://demo.127.0.0.1.nip.io", "prod": "https://demo.203.0.113.10.nip.io"}
SOLVER_POLICY = "acme-http01-solver-from-ingress-controller"


def _domains(**extra: Any) -> dict[str, Any]:
    return {"domains": {"hosts": HOSTS, "clusterIssuer": "letsencrypt-prod", **extra}}


def _render(chart: str, ci: str, values: dict[str, Any], helm: str | None = None) -> list[dict[str, Any]]:
    return render_chart(chart, [ci_values(chart, ci)], values=values, helm=helm)


def _envs(manifests: list[dict[str, Any]], name: str) -> list[str]:
    """The value of env `name` in every container of every pod template that sets it."""
    found = []
    for obj in manifests:
        spec = pod_spec(obj)
        if spec is None:
            continue
        for container in containers(spec):
            for env in container.get("env", []):
                if env["name"] == name:
                    found.append(env["value"])
    return found


def _wp_constants(manifests: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(WP_HOME, WP_SITEURL) as every WordPress and wp-cli container's wp-config defines them."""
    pairs = []
    for extra in _envs(manifests, "WORDPRESS_CONFIG_EXTRA"):
        defines = dict(
            line.removeprefix("define('").removesuffix("');").split("', '")
            for line in extra.splitlines()
            if line.startswith(("define('WP_HOME'", "define('WP_SITEURL'"))
        )
        pairs.append((defines["WP_HOME"], defines["WP_SITEURL"]))
    return pairs


@pytest.mark.parametrize("ci", CI_VALUES)
def test_wordpress_calls_itself_by_the_primary_domain(ci: str) -> None:
    manifests = _render("woocommerce", ci, _domains(primary="xn--bcher-kva.example"))
    constants = _wp_constants(manifests)
    # The web Deployment, cron and the setup Job all read the same wp-config constants.
    assert len(constants) >= 3
    assert set(constants) == {("https://xn--bcher-kva.example", "https://xn--bcher-kva.example")}
    assert _envs(manifests, "WP_URL") == ["https://xn--bcher-kva.example"]


@pytest.mark.parametrize("ci", CI_VALUES)
@pytest.mark.parametrize(
    "values", [_domains(), _domains(primary=""), {}], ids=["no-primary", "empty", "none"]
)
def test_wordpress_without_a_primary_uses_the_store_host(ci: str, values: dict[str, Any]) -> None:
    manifests = _render("woocommerce", ci, values)
    assert set(_wp_constants(manifests)) == {(PLATFORM_URL[ci], PLATFORM_URL[ci])}
    assert _envs(manifests, "WP_URL") == [PLATFORM_URL[ci]]


@pytest.mark.parametrize("ci", CI_VALUES)
@pytest.mark.parametrize("primary", ["", "shop.example.com"])
def test_medusa_cors_lists_the_store_host_and_every_routed_domain(ci: str, primary: str) -> None:
    manifests = _render("medusa", ci, _domains(primary=primary))
    expected = ",".join([PLATFORM_URL[ci], "https://shop.example.com", "https://xn--bcher-kva.example"])
    for name in ("STORE_CORS", "ADMIN_CORS", "AUTH_CORS"):
        values = _envs(manifests, name)
        assert values, name
        assert set(values) == {expected}, name


@pytest.mark.parametrize("ci", CI_VALUES)
def test_medusa_cors_without_domains_is_the_store_host_alone(ci: str) -> None:
    manifests = _render("medusa", ci, {})
    for name in ("STORE_CORS", "ADMIN_CORS", "AUTH_CORS"):
        assert set(_envs(manifests, name)) == {PLATFORM_URL[ci]}


@pytest.mark.parametrize("helm", sorted(HELMS))
@pytest.mark.parametrize("chart", CHARTS)
def test_a_primary_outside_the_hosts_fails_with_a_clear_message(chart: str, helm: str) -> None:
    with pytest.raises(HelmTemplateError) as error:
        _render(chart, "local", _domains(primary="other.example.com"), helm=str(HELMS[helm]))
    assert 'domains.primary "other.example.com" is not one of domains.hosts' in error.value.stderr


BAD_PRIMARIES = [
    pytest.param("Shop.example.com", id="upper-case"),
    pytest.param("https://shop.example.com", id="url"),
    pytest.param("*.example.com", id="wildcard"),
    pytest.param("shop", id="single-label"),
    pytest.param(True, id="not-a-string"),
]


@pytest.mark.parametrize("helm", sorted(HELMS))
@pytest.mark.parametrize("primary", BAD_PRIMARIES)
@pytest.mark.parametrize("chart", CHARTS)
def test_a_malformed_primary_is_refused_by_the_schema(chart: str, primary: Any, helm: str) -> None:
    with pytest.raises(HelmTemplateError) as error:
        _render(chart, "local", _domains(primary=primary), helm=str(HELMS[helm]))
    assert "schema" in error.value.stderr
    assert "primary" in error.value.stderr


@pytest.mark.parametrize("ci", CI_VALUES)
@pytest.mark.parametrize("chart", CHARTS)
def test_the_solver_policy_admits_only_the_ingress_controller_on_8089(chart: str, ci: str) -> None:
    manifests = _render(chart, ci, _domains(acmeHttp01Solver=True))
    (policy,) = [p for p in by_kind(manifests, "NetworkPolicy") if p["metadata"]["name"] == SOLVER_POLICY]
    namespace, pod_labels = CONTROLLER[ci]
    assert policy["metadata"]["namespace"] == "store-demo"
    assert policy["spec"] == {
        "podSelector": {"matchLabels": {"acme.cert-manager.io/http01-solver": "true"}},
        "policyTypes": ["Ingress"],
        "ingress": [
            {
                "from": [
                    {
                        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
                        "podSelector": {"matchLabels": pod_labels},
                    }
                ],
                "ports": [{"protocol": "TCP", "port": 8089}],
            }
        ],
    }


@pytest.mark.parametrize("ci", CI_VALUES)
@pytest.mark.parametrize("chart", CHARTS)
def test_the_solver_policy_is_the_only_difference_when_on(chart: str, ci: str) -> None:
    def policies(values: dict[str, Any]) -> dict[str, Any]:
        return {p["metadata"]["name"]: p for p in by_kind(_render(chart, ci, values), "NetworkPolicy")}

    on = policies(_domains(acmeHttp01Solver=True))
    off = policies(_domains(acmeHttp01Solver=False))
    default = policies(_domains())
    assert SOLVER_POLICY not in off
    assert off == default
    assert set(on) - set(off) == {SOLVER_POLICY}
    assert {name: on[name] for name in off} == off


@pytest.mark.parametrize("helm", sorted(HELMS))
@pytest.mark.parametrize("chart", CHARTS)
def test_lint_strict_passes_with_a_primary_and_the_solver_policy(chart: str, helm: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        extra = Path(tmp) / "primary.yaml"
        extra.write_text(yaml.safe_dump(_domains(primary="shop.example.com", acmeHttp01Solver=True)))
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


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("chart", CHARTS)
def test_objects_with_a_primary_and_the_solver_policy_validate_strictly(chart: str, version: str) -> None:
    manifests = _render(chart, "prod", _domains(primary="shop.example.com", acmeHttp01Solver=True))
    assert [p for p in by_kind(manifests, "NetworkPolicy") if p["metadata"]["name"] == SOLVER_POLICY]
    for obj in manifests:
        if not obj["apiVersion"].startswith("cert-manager.io/"):
            kubernetes_validate.validate(obj, version, strict=True)
