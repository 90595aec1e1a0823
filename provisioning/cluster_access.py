"""How the platform reaches its cluster: the kubeconfig or in-cluster service account, the official
Kubernetes client and helm. Shared by the executor, the reconciler and credential reads."""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import yaml
from django.conf import settings
from kubernetes import client, config
from kubernetes.config.config_exception import ConfigException

from provisioning.helm import HelmClient, HelmInvocation

if TYPE_CHECKING:
    from provisioning.models import Cluster

# helm reads a kubeconfig from a file: a stored cluster's, opened, is written here (0700 directory,
# 0600 files) for the life of the process and removed when it exits.
_KUBECONFIG_DIR: Path | None = None


def _private_kubeconfig_file(cluster_id: int, text: str) -> str:
    global _KUBECONFIG_DIR
    if _KUBECONFIG_DIR is None:
        _KUBECONFIG_DIR = Path(tempfile.mkdtemp(prefix="cluster-kubeconfigs-"))
        atexit.register(shutil.rmtree, _KUBECONFIG_DIR, True)
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    path = _KUBECONFIG_DIR / f"cluster-{cluster_id}-{digest}.yaml"
    if not path.exists():
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(text)
    return str(path)


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


def cluster_configured() -> bool:
    """True when there is something to ask: a kubeconfig file or an in-cluster service account
    (whether it answers is another matter)."""
    return kubeconfig_path() is not None or in_cluster()


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


@dataclass
class ClusterAccess:
    """How the executor, the reconciler and credential reads reach the cluster: a Kubernetes client
    factory and a helm factory. Tests pass one pointing at a real control plane or the API double."""

    api_client_factory: Callable[[], client.ApiClient] = new_api_client
    helm_factory: Callable[[Callable[[HelmInvocation], None]], HelmClient] | None = None

    def helm(self, on_invocation: Callable[[HelmInvocation], None]) -> HelmClient:
        """A HelmClient that reports every invocation to `on_invocation`."""
        if self.helm_factory is not None:
            return self.helm_factory(on_invocation)
        return HelmClient(
            kubeconfig=kubeconfig_path(),
            kube_context=settings.KUBE_CONTEXT or None,
            on_invocation=on_invocation,
        )

    @classmethod
    def for_cluster(cls, cluster: Cluster) -> ClusterAccess:
        """How to reach one Cluster row: the ambient kubeconfig or in-cluster account for the
        default kind, else its sealed kubeconfig, opened in memory for the client."""
        from provisioning.choices import ClusterConnection
        from provisioning.credential_box import unseal

        if cluster.connection == ClusterConnection.AMBIENT:
            return cls()
        text = unseal(cluster.kubeconfig_sealed)
        kubeconfig = yaml.safe_load(text)
        context = cluster.context or None
        cluster_id = cluster.pk

        def api_client() -> client.ApiClient:
            try:
                return config.new_client_from_config_dict(kubeconfig, context=context)
            except (ConfigException, OSError, KeyError) as exc:
                raise ClusterNotConfigured(f"cluster {cluster.name}'s kubeconfig is unusable: {exc}") from exc

        def helm(on_invocation: Callable[[HelmInvocation], None]) -> HelmClient:
            return HelmClient(
                kubeconfig=_private_kubeconfig_file(cluster_id, text),
                kube_context=context,
                on_invocation=on_invocation,
            )

        return cls(api_client_factory=api_client, helm_factory=helm)

    def configured(self) -> bool:
        """False only when the default access has no kubeconfig and no in-cluster service account:
        nothing could reach a cluster, so work waits instead of failing (injected access: True)."""
        if self.api_client_factory is not new_api_client:
            return True
        return cluster_configured()
