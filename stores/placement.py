"""Where a new store goes: the least-loaded healthy cluster that is not draining, that fits the plan's
quota for the engine, in the tenant's preferred region if it has one. A refusal says why.

Load is what placed stores claim, not what they use: each live store counts its plan's quota (the
ResourceQuota its namespace gets) against the cluster's allocatable CPU and memory, so a cluster is
never promised more than it can schedule.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection
from django.db.models import Count, F, Q, Sum

from platform_site.errors import ApplicationError
from provisioning.choices import ClusterHealth
from provisioning.clusters import cluster_default
from provisioning.models import Cluster
from stores.choices import STORE_TERMINAL_STATUSES
from stores.models import PlanResources, Store, Tenant

# Arbitrary constant naming the advisory lock that serialises placements across tenants.
PLACEMENT_LOCK_KEY = 7_351_002


class NoClusterHasRoom(ApplicationError):
    """No cluster can take a store of this size now; staff add capacity or stop draining one."""

    code = "no_capacity"
    http_status = 409


@dataclass(frozen=True)
class ClusterLoad:
    """A cluster's promised quota against what it can allocate (None: not measured yet)."""

    cluster: Cluster
    cpu_millicores: int
    memory_mib: int
    stores: int

    @property
    def free_fraction(self) -> float:
        """The smaller of its free CPU and free memory shares; 1.0 when its capacity is unknown."""
        cpu, memory = self.cluster.allocatable_cpu_millicores, self.cluster.allocatable_memory_mib
        if not cpu or not memory:
            return 1.0
        return min(1 - self.cpu_millicores / cpu, 1 - self.memory_mib / memory)

    @property
    def free_cpu_millicores(self) -> int:
        """CPU not yet promised; 0 when the capacity is unknown (ties then go to measured clusters)."""
        return (self.cluster.allocatable_cpu_millicores or 0) - self.cpu_millicores

    def fits(self, cpu_millicores: int, memory_mib: int) -> bool:
        cpu, memory = self.cluster.allocatable_cpu_millicores, self.cluster.allocatable_memory_mib
        if cpu is None or memory is None:
            return True  # not measured yet (a new single-cluster set-up): do not refuse on a guess
        return self.cpu_millicores + cpu_millicores <= cpu and self.memory_mib + memory_mib <= memory


def cluster_loads(clusters: list[Cluster] | None = None) -> list[ClusterLoad]:
    """Every cluster (or these) with the quota its live stores claim and how many there are: one
    grouped query for all of them. The join to the plan's resources has a row per engine the plan
    prices, so the sums take only the store's own engine and the count counts stores once."""
    resources = "tenant__plan__resources"
    own_engine = Q(**{f"{resources}__engine": F("engine")})
    claimed = {
        row["cluster_id"]: row
        for row in Store.objects.exclude(status__in=STORE_TERMINAL_STATUSES)
        .values("cluster_id")
        .annotate(
            cpu=Sum(f"{resources}__cpu_millicores", filter=own_engine),
            memory=Sum(f"{resources}__memory_mib", filter=own_engine),
            n=Count("id", distinct=True),
        )
    }
    empty = {"cpu": 0, "memory": 0, "n": 0}
    return [
        ClusterLoad(
            cluster,
            int(claimed.get(cluster.pk, empty)["cpu"] or 0),
            int(claimed.get(cluster.pk, empty)["memory"] or 0),
            int(claimed.get(cluster.pk, empty)["n"]),
        )
        for cluster in (list(Cluster.objects.all()) if clusters is None else clusters)
    ]


def _serialise_placements() -> None:
    # Two tenants' creates must not both take the last room on a cluster (SQLite serialises writers).
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [PLACEMENT_LOCK_KEY])


def store_place(*, tenant: Tenant, engine: str) -> Cluster:
    """The cluster a new store of `tenant` and `engine` goes to; NoClusterHasRoom when none fits.
    Must be called inside the transaction that creates the store."""
    clusters = list(Cluster.objects.all())
    if not clusters:
        return cluster_default()
    _serialise_placements()
    need = PlanResources.objects.filter(plan_id=tenant.plan_id, engine=engine).first()
    cpu, memory = (need.cpu_millicores, need.memory_mib) if need else (0, 0)
    candidates = [
        load
        for load in cluster_loads(clusters)
        if not load.cluster.draining and load.cluster.health != ClusterHealth.UNREACHABLE
    ]
    if tenant.region:
        candidates = [load for load in candidates if load.cluster.region == tenant.region]
    fitting = [load for load in candidates if load.fits(cpu, memory)]
    if not fitting:
        where = f" in region {tenant.region}" if tenant.region else ""
        why = "none is reachable and open for new stores" if not candidates else "none has room for it"
        raise NoClusterHasRoom(
            f"No cluster{where} can take a store of this size ({cpu}m CPU, {memory} MiB) now: {why}. "
            "Try again later; the platform's staff have to add capacity."
        )
    # Least loaded first; between equals, the one with more room left, then the fewer stores.
    return max(
        fitting,
        key=lambda load: (
            round(load.free_fraction, 6),
            load.free_cpu_millicores,
            -load.stores,
            -load.cluster.pk,
        ),
    ).cluster
