"""Template context every page gets: whether the cluster is simulated or unreachable."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest

from provisioning.selectors import cluster_status


def cluster_banner(request: HttpRequest) -> dict[str, Any]:
    """`cluster_banner` is None, or a short sentence shown at the top of every page."""
    if settings.CLUSTER_IS_SIMULATED:
        return {
            "cluster_banner": "Simulated cluster: stores run against the Kubernetes API test double, "
            "not real pods. Nothing here is reachable on the internet.",
            "cluster_banner_kind": "simulated",
        }
    if settings.CLUSTER_NODES_SIMULATED:
        return {
            "cluster_banner": "Real Kubernetes control plane with simulated (kwok) nodes: stores are "
            "admitted, scheduled and torn down for real, but no containers run.",
            "cluster_banner_kind": "simulated",
        }
    status = cluster_status()
    if not status.configured:
        return {
            "cluster_banner": f"No cluster configured: {status.detail} New stores wait in “requested” "
            "until one is.",
            "cluster_banner_kind": "unreachable",
        }
    if not status.reachable:
        return {
            "cluster_banner": f"The cluster does not answer: {status.detail} New stores are retried "
            "automatically a few times, then marked failed with the reason; retry them once it is back.",
            "cluster_banner_kind": "unreachable",
        }
    return {"cluster_banner": None, "cluster_banner_kind": ""}
