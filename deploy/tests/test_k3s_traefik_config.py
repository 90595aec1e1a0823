"""deploy/k3s/traefik-config.yaml lets k3s's Traefik route ExternalName backends (a suspended store's
paused page), and the real node's Traefik, where the paused page is proven, runs with the same setting."""

from __future__ import annotations

from pathlib import Path

import yaml

from localcluster.ingress import traefik_manifests

CONFIG = Path(__file__).resolve().parents[1] / "k3s" / "traefik-config.yaml"


def test_the_helm_chart_config_targets_k3s_traefik_and_allows_external_name_services():
    config = yaml.safe_load(CONFIG.read_text())
    assert (config["apiVersion"], config["kind"]) == ("helm.cattle.io/v1", "HelmChartConfig")
    assert (config["metadata"]["name"], config["metadata"]["namespace"]) == ("traefik", "kube-system")
    values = yaml.safe_load(config["spec"]["valuesContent"])
    assert values == {"providers": {"kubernetesIngress": {"allowExternalNameServices": True}}}


def test_the_real_nodes_traefik_runs_with_the_same_setting():
    [deployment] = [m for m in traefik_manifests("10.0.0.1") if m["kind"] == "Deployment"]
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert "--providers.kubernetesIngress.allowExternalNameServices=true" in container["args"]
