"""Helpers for the tests that run on the real control plane (localcluster)."""

from __future__ import annotations

import itertools
import os
import time
import urllib.error
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from charts.tests.platform_support import rendered_platform
from localcluster import LocalCluster
from stores.models import Store

# Kinds whose objects helm or the orchestrator create in a store namespace: (api, resource).
STORE_KINDS = (
    ("v1", "secrets"),
    ("v1", "configmaps"),
    ("v1", "services"),
    ("v1", "persistentvolumeclaims"),
    ("v1", "resourcequotas"),
    ("v1", "limitranges"),
    ("apps/v1", "deployments"),
    ("apps/v1", "statefulsets"),
    ("batch/v1", "jobs"),
    ("batch/v1", "cronjobs"),
    ("networking.k8s.io/v1", "ingresses"),
    ("networking.k8s.io/v1", "networkpolicies"),
    ("rbac.authorization.k8s.io/v1", "rolebindings"),
)
PLATFORM_NAMESPACE = "platform"
_counter = itertools.count(1)


def unique_name(prefix: str) -> str:
    """A store name no earlier test of this session used (namespaces outlive a test's database)."""
    return f"{prefix}-{os.getpid() % 1000}-{next(_counter)}"


def status_of(store: Store) -> str | None:
    return Store.objects.filter(pk=store.pk).values_list("status", flat=True).first()


def reason_of(store: Store) -> str:
    return Store.objects.filter(pk=store.pk).values_list("status_reason", flat=True).first() or ""


def release_states(cluster: LocalCluster, namespace: str) -> list[str]:
    """helm's release records in the namespace (its labelled Secrets), by status."""
    return sorted(
        secret["metadata"]["labels"]["status"]
        for secret in cluster.objects("secrets", namespace, label_selector="owner=helm")
    )


def wait_namespace_gone(cluster: LocalCluster, namespace: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while cluster.get("namespaces", namespace) is not None:
        if time.monotonic() > deadline:
            raise AssertionError(f"namespace {namespace} still exists after {timeout:.0f} s")
        time.sleep(0.5)


def forbidden(call: Any) -> str:
    """Run `call`; return the apiserver's message if it answered 403, else fail."""
    try:
        call()
    except urllib.error.HTTPError as exc:
        body = exc.read().decode(errors="replace")
        assert exc.code == 403, f"expected 403, got {exc.code}: {body}"
        return body
    raise AssertionError("the request was allowed")


@dataclass(frozen=True)
class PlatformIdentity:
    """The platform chart's ServiceAccount installed into a real cluster, with a kubeconfig and a
    token that carry nothing but that ServiceAccount's own rights."""

    namespace: str
    service_account: str
    kubeconfig: Path
    token: str

    @property
    def setting(self) -> str:
        """The PLATFORM_SERVICE_ACCOUNT value the worker needs to bind store-deployer for itself."""
        return f"{self.namespace}/{self.service_account}"


PLATFORM_RBAC_KINDS = {
    "ServiceAccount",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
}


def platform_rbac_manifests() -> list[dict[str, Any]]:
    """The RBAC objects and admission policy of charts/platform, rendered with values-local.yaml."""
    return [obj for obj in rendered_platform("local") if obj["kind"] in PLATFORM_RBAC_KINDS]


WORKER_ACCOUNT = "platform"
WEB_ACCOUNT = "platform-web"


def install_platform_identity(
    cluster: LocalCluster, work_dir: Path, *, service_account: str = WORKER_ACCOUNT
) -> PlatformIdentity:
    """Apply the platform chart's RBAC and admission policy; mint a token for one of its
    ServiceAccounts (the worker's by default, or the web pods' with service_account=WEB_ACCOUNT)."""
    cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": PLATFORM_NAMESPACE}})
    for manifest in platform_rbac_manifests():
        manifest.setdefault("metadata", {})
        if manifest["kind"] in {"ServiceAccount", "Role", "RoleBinding"}:
            manifest["metadata"].setdefault("namespace", PLATFORM_NAMESPACE)
        cluster.apply(manifest)
    kubeconfig = cluster.service_account_kubeconfig(
        namespace=PLATFORM_NAMESPACE, name=service_account, path=work_dir / f"{service_account}.kubeconfig"
    )
    token = _token_of(kubeconfig)
    identity = PlatformIdentity(PLATFORM_NAMESPACE, service_account, kubeconfig, token)
    if service_account == WORKER_ACCOUNT:
        _wait_policy_enforced(cluster, identity)
    return identity


def _token_of(kubeconfig: Path) -> str:
    import yaml

    return yaml.safe_load(kubeconfig.read_text())["users"][0]["user"]["token"]


def _wait_policy_enforced(cluster: LocalCluster, identity: PlatformIdentity, timeout: float = 30) -> None:
    # The admission policy takes effect once the apiserver's policy informer has seen it.
    deadline = time.monotonic() + timeout
    probe = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "not-a-store-probe"}}
    while True:
        try:
            cluster.request("POST", "/api/v1/namespaces?dryRun=All", probe, token=identity.token)
        except urllib.error.HTTPError as exc:
            if exc.code == 403 and b"ValidatingAdmissionPolicy" in exc.read():
                return
        if time.monotonic() > deadline:
            raise AssertionError("the platform's ValidatingAdmissionPolicy was not enforced in time")
        time.sleep(0.5)
