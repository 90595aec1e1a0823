"""helm itself accepts both charts: lint --strict and template, with Helm 3 and Helm 4 alike."""

from __future__ import annotations

import pytest
import yaml

from charts.tests.rendering import CHARTS_DIR, render_chart, run_helm
from charts.tests.support import CHARTS, CI_VALUES, HELMS, ci_values


@pytest.mark.parametrize("helm", sorted(HELMS))
@pytest.mark.parametrize("ci", CI_VALUES)
@pytest.mark.parametrize("chart", CHARTS)
def test_lint_strict_passes(chart: str, ci: str, helm: str) -> None:
    result = run_helm(
        ["lint", "--strict", str(CHARTS_DIR / chart), "-f", str(ci_values(chart, ci))], helm=str(HELMS[helm])
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "[WARNING]" not in result.stdout
    assert "[ERROR]" not in result.stdout


@pytest.mark.parametrize("ci", CI_VALUES)
@pytest.mark.parametrize("chart", CHARTS)
def test_helm3_and_helm4_render_the_same_objects(chart: str, ci: str) -> None:
    helm3 = render_chart(chart, [ci_values(chart, ci)], helm=str(HELMS["helm3"]))
    helm4 = render_chart(chart, [ci_values(chart, ci)], helm=str(HELMS["helm4"]))

    assert helm3 == helm4
    assert len(helm3) > 10


@pytest.mark.parametrize("chart", CHARTS)
def test_chart_defaults_render_a_complete_store(chart: str) -> None:
    manifests = render_chart(chart)
    kinds = {m["kind"] for m in manifests}

    expected = {"Deployment", "StatefulSet", "Service", "Ingress", "Job", "NetworkPolicy"}
    assert expected | {"ResourceQuota", "LimitRange"} <= kinds


@pytest.mark.parametrize("chart", CHARTS)
def test_ci_local_values_match_the_chart_defaults(chart: str) -> None:
    """The orchestrator's contract section of values.yaml is exactly what ci/local-values.yaml says."""
    defaults = yaml.safe_load((CHARTS_DIR / chart / "values.yaml").read_text())
    local = yaml.safe_load(ci_values(chart, "local").read_text())

    for key, value in local.items():
        if key == "network":
            assert defaults[key]["clusterCIDRs"] == value["clusterCIDRs"]
        else:
            assert defaults[key] == value, key
