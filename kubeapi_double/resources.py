"""The resource types the double serves, and their discovery documents."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


@dataclass(frozen=True)
class ResourceType:
    """One served resource: where it lives in the API and how it behaves."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    has_status: bool = False
    # Names of RBAC objects are path segments, not DNS names (e.g. "system:controller").
    name_rule: str = "subdomain"

    @property
    def api_version(self) -> str:
        """The ``apiVersion`` string of objects of this type."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """``plural.group`` as used in API error messages (``deployments.apps``)."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def singular(self) -> str:
        """The lower-case singular name used in discovery."""
        return self.kind.lower()


_ALL = ("all",)

RESOURCE_TYPES: tuple[ResourceType, ...] = (
    ResourceType("", "v1", "Namespace", "namespaces", False, ("ns",), has_status=True, name_rule="label"),
    ResourceType("", "v1", "Secret", "secrets"),
    ResourceType("", "v1", "ConfigMap", "configmaps", short_names=("cm",)),
    ResourceType(
        "",
        "v1",
        "Service",
        "services",
        short_names=("svc",),
        categories=_ALL,
        has_status=True,
        name_rule="label",
    ),
    ResourceType("", "v1", "ServiceAccount", "serviceaccounts", short_names=("sa",)),
    ResourceType(
        "", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", short_names=("pvc",), has_status=True
    ),
    ResourceType("", "v1", "Pod", "pods", short_names=("po",), categories=_ALL, has_status=True),
    ResourceType("", "v1", "Event", "events", short_names=("ev",)),
    ResourceType("", "v1", "ResourceQuota", "resourcequotas", short_names=("quota",), has_status=True),
    ResourceType("", "v1", "LimitRange", "limitranges", short_names=("limits",)),
    ResourceType(
        "apps", "v1", "Deployment", "deployments", short_names=("deploy",), categories=_ALL, has_status=True
    ),
    ResourceType(
        "apps", "v1", "StatefulSet", "statefulsets", short_names=("sts",), categories=_ALL, has_status=True
    ),
    ResourceType(
        "apps", "v1", "ReplicaSet", "replicasets", short_names=("rs",), categories=_ALL, has_status=True
    ),
    ResourceType(
        "apps", "v1", "DaemonSet", "daemonsets", short_names=("ds",), categories=_ALL, has_status=True
    ),
    ResourceType("batch", "v1", "Job", "jobs", categories=_ALL, has_status=True),
    ResourceType("batch", "v1", "CronJob", "cronjobs", short_names=("cj",), categories=_ALL, has_status=True),
    ResourceType("networking.k8s.io", "v1", "Ingress", "ingresses", short_names=("ing",), has_status=True),
    ResourceType("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", short_names=("netpol",)),
    ResourceType("networking.k8s.io", "v1", "IngressClass", "ingressclasses", False),
    ResourceType("rbac.authorization.k8s.io", "v1", "Role", "roles", name_rule="path"),
    ResourceType("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", name_rule="path"),
    ResourceType("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", False, name_rule="path"),
    ResourceType(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
        False,
        name_rule="path",
    ),
    ResourceType(
        "policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", short_names=("pdb",), has_status=True
    ),
    ResourceType(
        "autoscaling",
        "v2",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        short_names=("hpa",),
        categories=_ALL,
        has_status=True,
    ),
    ResourceType(
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingAdmissionPolicy",
        "validatingadmissionpolicies",
        False,
        has_status=True,
    ),
    ResourceType(
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingAdmissionPolicyBinding",
        "validatingadmissionpolicybindings",
        False,
    ),
    ResourceType(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        False,
        short_names=("crd", "crds"),
        has_status=True,
    ),
    ResourceType("coordination.k8s.io", "v1", "Lease", "leases"),
    ResourceType("storage.k8s.io", "v1", "StorageClass", "storageclasses", False, short_names=("sc",)),
)

_BY_PATH = {(rt.group, rt.version, rt.plural): rt for rt in RESOURCE_TYPES}


def by_path(group: str, version: str, plural: str) -> ResourceType | None:
    """The resource served at ``/apis/GROUP/VERSION/PLURAL`` (``group`` empty for core)."""
    return _BY_PATH.get((group, version, plural))


def lookup(name: str) -> ResourceType:
    """Resolve a kind, plural, short name or ``plural.group`` (case-insensitive) to its type."""
    wanted = name.lower()
    for rt in RESOURCE_TYPES:
        if wanted in (
            rt.kind.lower(),
            rt.plural,
            rt.qualified,
            f"{rt.kind.lower()}.{rt.group}",
            *rt.short_names,
        ):
            return rt
    raise KeyError(f"unknown resource {name!r}")


def by_api_version_kind(api_version: str, kind: str) -> ResourceType | None:
    """The resource type for an object's ``apiVersion`` and ``kind``."""
    for rt in RESOURCE_TYPES:
        if rt.api_version == api_version and rt.kind == kind:
            return rt
    return None


def group_versions() -> dict[str, list[str]]:
    """Served versions of each named API group, in discovery order."""
    groups: dict[str, list[str]] = {}
    for rt in RESOURCE_TYPES:
        if rt.group and rt.version not in groups.setdefault(rt.group, []):
            groups[rt.group].append(rt.version)
    return groups


def api_versions_document(server_address: str) -> dict[str, Any]:
    """The legacy ``/api`` document."""
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def _group_entry(group: str, versions: list[str]) -> dict[str, Any]:
    entries = [{"groupVersion": f"{group}/{version}", "version": version} for version in versions]
    return {"name": group, "versions": entries, "preferredVersion": entries[0]}


def api_group_list_document() -> dict[str, Any]:
    """The legacy (non-aggregated) ``/apis`` document."""
    groups = [_group_entry(group, versions) for group, versions in group_versions().items()]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group_document(group: str) -> dict[str, Any] | None:
    """The ``/apis/GROUP`` document, or None for an unknown group."""
    versions = group_versions().get(group)
    if not versions:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group_entry(group, versions)}


def api_resource_list_document(group: str, version: str) -> dict[str, Any] | None:
    """The ``/api/v1`` or ``/apis/GROUP/VERSION`` resource list, or None if not served."""
    resources: list[dict[str, Any]] = []
    for rt in RESOURCE_TYPES:
        if (rt.group, rt.version) != (group, version):
            continue
        entry: dict[str, Any] = {
            "name": rt.plural,
            "singularName": rt.singular,
            "namespaced": rt.namespaced,
            "kind": rt.kind,
            "verbs": VERBS,
        }
        if rt.short_names:
            entry["shortNames"] = list(rt.short_names)
        if rt.categories:
            entry["categories"] = list(rt.categories)
        resources.append(entry)
        if rt.has_status:
            resources.append(
                {
                    "name": f"{rt.plural}/status",
                    "singularName": "",
                    "namespaced": rt.namespaced,
                    "kind": rt.kind,
                    "verbs": ["get", "patch", "update"],
                }
            )
    if not resources:
        return None
    # client-go insists on exactly "v1" for the core group, never "/v1".
    group_version = f"{group}/{version}" if group else version
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }
