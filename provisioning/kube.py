"""Access to the Kubernetes API through the official client; the client is injectable for tests."""

from __future__ import annotations

import os
from pathlib import Path

from django.conf import settings
from kubernetes import client, config
from kubernetes.config.config_exception import ConfigException


class ClusterNotConfigured(Exception):
    """No kubeconfig and not running inside a pod."""


def kubeconfig_path() -> str | None:
    """The kubeconfig file in force: settings.KUBECONFIG, else ~/.kube/config if it exists."""
    if settings.KUBECONFIG:
        return settings.KUBECONFIG
    default = Path.home() / ".kube" / "config"
    return str(default) if default.is_file() else None


def in_cluster() -> bool:
    """True when running in a pod with a mounted service account."""
    return (
        bool(os.environ.get("KUBERNETES_SERVICE_HOST"))
        and Path("/var/run/secrets/kubernetes.io/serviceaccount/token").is_file()
    )


def new_api_client() -> client.ApiClient:
    """A fresh ApiClient from in-cluster config or the kubeconfig/context in settings."""
    path = kubeconfig_path()
    if path:
        try:
            return config.new_client_from_config(config_file=path, context=settings.KUBE_CONTEXT or None)
        except (ConfigException, OSError) as exc:
            raise ClusterNotConfigured(f"kubeconfig {path} is unusable: {exc}") from exc
    if in_cluster():
        configuration = client.Configuration()
        config.load_incluster_config(client_configuration=configuration)
        return client.ApiClient(configuration)
    raise ClusterNotConfigured("no kubeconfig found and not running inside a cluster")
