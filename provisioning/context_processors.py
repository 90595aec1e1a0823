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
    if not status.reachable:
        return {
            "cluster_banner": f"No cluster reachable: {status.detail} New stores stay queued until it is.",
            "cluster_banner_kind": "unreachable",
        }
    return {"cluster_banner": None, "cluster_banner_kind": ""}
