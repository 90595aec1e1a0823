"""Reads about the cluster."""

from __future__ import annotations

from dataclasses import dataclass

from django.core.cache import cache
from kubernetes import client
from urllib3.exceptions import HTTPError

from provisioning.cluster_access import ClusterNotConfigured, cluster_configured, new_api_client

CLUSTER_STATUS_CACHE_SECONDS = 15


@dataclass(frozen=True)
class ClusterStatus:
    """Whether the Kubernetes API answers; `configured` is False when nothing could be asked at all."""

    reachable: bool
    detail: str = ""
    configured: bool = True


def cluster_status(*, use_cache: bool = True) -> ClusterStatus:
    """Whether the Kubernetes API answers, cached briefly so every page view does not ask."""
    if use_cache:
        cached = cache.get("cluster-status")
        if cached is not None:
            return ClusterStatus(*cached)
    try:
        api_client = new_api_client()
        try:
            client.VersionApi(api_client).get_code(_request_timeout=2)
        finally:
            api_client.close()
        status = ClusterStatus(True)
    except ClusterNotConfigured as exc:
        status = ClusterStatus(False, f"{exc}.", configured=cluster_configured())
    except (HTTPError, client.ApiException, OSError) as exc:
        status = ClusterStatus(False, f"the Kubernetes API did not answer ({type(exc).__name__}).")
    cache.set(
        "cluster-status", (status.reachable, status.detail, status.configured), CLUSTER_STATUS_CACHE_SECONDS
    )
    return status
