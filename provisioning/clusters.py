"""Clusters: the default one, adding one with a sealed kubeconfig, its health (one writer, with an
event row per change) and its measured capacity.

Which cluster a store goes to is the store's business (stores.placement); this module only knows
clusters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from kubernetes.client import ApiException, CoreV1Api
from urllib3.exceptions import HTTPError

from platform_site.errors import ApplicationError
from provisioning.choices import CLUSTER_ALLOWED_HEALTH_TRANSITIONS, ClusterConnection, ClusterHealth
from provisioning.cluster_access import ClusterAccess, ClusterNotConfigured
from provisioning.credential_box import seal
from provisioning.models import Cluster, ClusterEvent
from provisioning.redaction import redact

DEFAULT_CLUSTER_NAME = "default"


class ClusterInvalid(ApplicationError):
    code = "invalid"
    http_status = 400


def cluster_default() -> Cluster:
    """The ambient cluster (KUBECONFIG, the current context, or the in-cluster account), created on
    first use so that a single-cluster set-up needs no Cluster row of its own."""
    existing = Cluster.objects.filter(is_default=True).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            return Cluster.objects.create(
                name=DEFAULT_CLUSTER_NAME, connection=ClusterConnection.AMBIENT, is_default=True
            )
    except IntegrityError:  # a concurrent first use created it
        return Cluster.objects.get(is_default=True)


def kubeconfig_check(text: str, context: str) -> dict[str, Any]:
    """The parsed kubeconfig; ClusterInvalid saying what is wrong with it (no cluster, no such context)."""
    try:
        kubeconfig = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ClusterInvalid(
            "The kubeconfig is not valid YAML.", fields={"kubeconfig": [str(exc)[:200]]}
        ) from exc
    if not isinstance(kubeconfig, dict) or not kubeconfig.get("clusters") or not kubeconfig.get("contexts"):
        raise ClusterInvalid(
            "The kubeconfig has no clusters or contexts.",
            fields={"kubeconfig": ["Paste a whole kubeconfig file."]},
        )
    names = {entry.get("name") for entry in kubeconfig["contexts"] if isinstance(entry, dict)}
    wanted = context or kubeconfig.get("current-context")
    if wanted not in names:
        choices = ", ".join(sorted(str(name) for name in names))
        raise ClusterInvalid(
            f"The kubeconfig has no context {wanted!r}; it has: {choices}.",
            fields={"context": [f"Choose one of: {choices}."]},
        )
    return kubeconfig


def cluster_create(
    *,
    name: str,
    kubeconfig: str,
    context: str = "",
    region: str = "",
    labels: dict[str, str] | None = None,
    helm_concurrency: int = 4,
) -> Cluster:
    """Add a cluster reached through `kubeconfig`, which is stored sealed and never shown again."""
    kubeconfig_check(kubeconfig, context)
    cluster = Cluster(
        name=name,
        region=region,
        labels=labels or {},
        connection=ClusterConnection.KUBECONFIG,
        kubeconfig_sealed=seal(kubeconfig),
        context=context,
        helm_concurrency=helm_concurrency,
    )
    try:
        cluster.full_clean()
    except ValidationError as exc:
        raise ClusterInvalid("The cluster is not valid.", fields=exc.message_dict) from exc
    cluster.save()
    return cluster


def cluster_replace_credentials(*, cluster: Cluster, kubeconfig: str, context: str = "") -> Cluster:
    """Store a new kubeconfig (sealed) for an existing cluster."""
    kubeconfig_check(kubeconfig, context)
    Cluster.objects.filter(pk=cluster.pk).update(
        connection=ClusterConnection.KUBECONFIG, kubeconfig_sealed=seal(kubeconfig), context=context
    )
    cluster.refresh_from_db()
    return cluster


def cluster_set_draining(*, cluster: Cluster, draining: bool) -> Cluster:
    """Draining: no new store is placed on the cluster; the stores already there stay."""
    Cluster.objects.filter(pk=cluster.pk).update(draining=draining)
    cluster.refresh_from_db()
    return cluster


def cluster_health_transition(*, cluster_id: int, to: ClusterHealth, reason: str = "") -> bool:
    """The one writer of `Cluster.health`: a conditional UPDATE plus an event row, in one short
    transaction; False when the cluster already had that health (or a concurrent writer won)."""
    sources = [source for source, targets in CLUSTER_ALLOWED_HEALTH_TRANSITIONS.items() if to in targets]
    now = timezone.now()
    with transaction.atomic():
        old = (
            Cluster.objects.select_for_update()
            .filter(pk=cluster_id, health__in=sources)
            .values_list("health", flat=True)
            .first()
        )
        if old is None:
            return False
        updated = Cluster.objects.filter(pk=cluster_id, health=old).update(
            health=to, health_reason=reason, health_changed_at=now, health_checked_at=now
        )
        if not updated:
            return False
        ClusterEvent.objects.create(cluster_id=cluster_id, old_health=old, new_health=to, reason=reason)
    return True


@dataclass(frozen=True)
class ClusterCheck:
    """What one check of a cluster found."""

    reachable: bool
    reason: str = ""
    allocatable_cpu_millicores: int | None = None
    allocatable_memory_mib: int | None = None


def _millicores(quantity: str) -> int:
    if quantity.endswith("m"):
        return int(quantity[:-1])
    return int(float(quantity) * 1000)


_MEMORY_UNITS = {
    "Ki": 1 / 1024,
    "Mi": 1,
    "Gi": 1024,
    "Ti": 1024**2,
    "K": 1000 / 1024**2,
    "M": 1000**2 / 1024**2,
    "G": 1000**3 / 1024**2,
}


def _mebibytes(quantity: str) -> int:
    for suffix, factor in _MEMORY_UNITS.items():
        if quantity.endswith(suffix):
            return int(float(quantity[: -len(suffix)]) * factor)
    return int(int(quantity) / 1024**2)


def cluster_check(*, access: ClusterAccess) -> ClusterCheck:
    """Ask the cluster for its nodes: reachable or not, and the allocatable CPU and memory of the nodes
    that are Ready and schedulable (what placement may fill)."""
    try:
        api = access.api_client_factory()
        try:
            nodes = CoreV1Api(api).list_node(_request_timeout=10).items
        finally:
            api.close()
    except ApiException as exc:
        # It answered: reachable, but its capacity stays unknown (e.g. nodes are not ours to read).
        return ClusterCheck(True, f"nodes could not be listed ({exc.status} {exc.reason})")
    except (HTTPError, OSError, ClusterNotConfigured) as exc:
        return ClusterCheck(False, redact(f"{type(exc).__name__}: {exc}")[:500])
    cpu = memory = 0
    for node in nodes:
        status = node.status
        if status is None:
            continue
        ready = any(c.type == "Ready" and c.status == "True" for c in (status.conditions or []))
        if not ready or (node.spec and node.spec.unschedulable):
            continue
        allocatable = status.allocatable or {}
        cpu += _millicores(allocatable.get("cpu", "0"))
        memory += _mebibytes(allocatable.get("memory", "0"))
    return ClusterCheck(True, allocatable_cpu_millicores=cpu, allocatable_memory_mib=memory)


def cluster_record_check(*, cluster: Cluster, check: ClusterCheck) -> None:
    """Write a check's findings: capacity when reachable, and the health through its one writer."""
    now = timezone.now()
    if check.reachable:
        measured = (
            {
                "allocatable_cpu_millicores": check.allocatable_cpu_millicores,
                "allocatable_memory_mib": check.allocatable_memory_mib,
            }
            if check.allocatable_cpu_millicores is not None
            else {}  # nodes not readable: keep what was measured before
        )
        Cluster.objects.filter(pk=cluster.pk).update(health_checked_at=now, **measured)
        cluster_health_transition(
            cluster_id=cluster.pk, to=ClusterHealth.HEALTHY, reason="The apiserver answered."
        )
    else:
        Cluster.objects.filter(pk=cluster.pk).update(health_checked_at=now)
        cluster_health_transition(cluster_id=cluster.pk, to=ClusterHealth.UNREACHABLE, reason=check.reason)
