"""One pass of the reaper and reconciler (Celery beat): provisioning's machinery finds interrupted
runs, pending releases, lost messages and vanished namespaces or releases; every store it concerns
is moved by the lifecycle (stores.lifecycle), never here.

On a cluster the fleet watcher follows (its heartbeat is fresh), the pass spawns helm only to act:
pending releases and drift come from the watcher's observations, so a quiet fleet costs no helm
process and no API call. On a cluster without a live watcher it falls back to looking with helm, in
bounded samples, as before the watcher existed.
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone
from kubernetes.client import ApiException
from urllib3.exceptions import HTTPError

from platform_site.errors import ApplicationError
from provisioning.choices import ClusterHealth, RunStatus
from provisioning.cluster_access import ClusterAccess, ClusterNotConfigured
from provisioning.helm import HelmError
from provisioning.models import Cluster, ProvisioningRun
from provisioning.reconcile import (
    PendingRelease,
    ReconcileReport,
    ReleaseLocation,
    existing_managed_namespaces,
    reap_overdue_runs,
    recover_known_pending_releases,
    recover_pending_releases,
    redispatch_orphaned_runs,
    release_exists,
)
from stores.choices import StoreStatus
from stores.fleet import stores_degrade_overdue
from stores.lifecycle import store_drifted, store_run_interrupted
from stores.models import Store, StoreObservation

logger = logging.getLogger(__name__)

# A ready store is checked for a vanished namespace or release only once it has been ready this long.
READY_SETTLE = timedelta(seconds=60)
# Bounds on helm calls per pass (one `helm list -n` per namespace) on clusters nobody watches.
PENDING_RELEASE_SCAN_LIMIT = 200
RELEASE_CHECK_SAMPLE = 50
CLUSTER_ERRORS = (HelmError, ClusterNotConfigured, ApiException, HTTPError, OSError, ApplicationError)
# Suspending and resuming are installs too: one interrupted can leave a pending release behind.
UNSETTLED = [
    StoreStatus.FAILED,
    StoreStatus.REQUESTED,
    StoreStatus.PROVISIONING,
    StoreStatus.DELETING,
    StoreStatus.SUSPENDING,
    StoreStatus.RESUMING,
]


def watch_is_fresh_since(now: datetime) -> datetime:
    """A cluster is watched while its watcher's heartbeat is younger than three passes (and a minute)."""
    return now - timedelta(seconds=max(60, 3 * settings.RECONCILE_INTERVAL))


def _latest_run_id(store_id: int) -> int | None:
    return (
        ProvisioningRun.objects.filter(store_id=store_id)
        .order_by("-created_at", "-id")
        .values_list("pk", flat=True)
        .first()
    )


def _suspects(cluster: Cluster) -> QuerySet[Store]:
    """Only stores that are not settled and have no running run can hold a pending-* release."""
    return (
        Store.objects.filter(cluster=cluster, status__in=UNSETTLED)
        .exclude(runs__status=RunStatus.RUNNING)
        .order_by("status_changed_at")
    )


def _recover_watched(cluster: Cluster, access: ClusterAccess, report: ReconcileReport) -> None:
    suspects = _suspects(cluster).values("pk")
    pending = [
        PendingRelease(namespace, release, _latest_run_id(store_id))
        for store_id, namespace, release in StoreObservation.objects.filter(
            store__in=suspects, release_status__startswith="pending-"
        ).values_list("store_id", "store__namespace", "store__release_name")[:PENDING_RELEASE_SCAN_LIMIT]
    ]
    recover_known_pending_releases(access=access, pending=pending, report=report)


def _recover_unwatched(cluster: Cluster, access: ClusterAccess, report: ReconcileReport) -> None:
    # Recovery calls are recorded on the store's latest run: the one that left the release pending.
    locations = [
        ReleaseLocation(namespace=store.namespace, record_on_run_id=_latest_run_id(store.pk))
        for store in _suspects(cluster).only("pk", "namespace")[:PENDING_RELEASE_SCAN_LIMIT]
    ]
    recover_pending_releases(access=access, locations=locations, report=report)


def _drift_unwatched(
    cluster: Cluster, access: ClusterAccess, report: ReconcileReport, *, now: datetime
) -> None:
    """Ready stores whose namespace (every store, one list call) or helm release (a bounded sample,
    one helm call each) vanished are provisioned again."""
    candidates = list(
        Store.objects.filter(
            cluster=cluster, status=StoreStatus.READY, status_changed_at__lt=now - READY_SETTLE
        ).only("pk", "name", "namespace", "release_name")
    )
    if not candidates:
        return
    namespaces = existing_managed_namespaces(access=access)
    sampled = {
        store.pk
        for store in secrets.SystemRandom().sample(candidates, min(len(candidates), RELEASE_CHECK_SAMPLE))
    }
    for store in candidates:
        if store.namespace not in namespaces:
            missing = f"namespace {store.namespace}"
        elif store.pk in sampled and not release_exists(
            access=access, namespace=store.namespace, release=store.release_name
        ):
            missing = f"helm release {store.release_name}"
        else:
            continue
        if store_drifted(store_id=store.pk, missing=missing):
            report.reprovisioned.append(store.name)


def fleet_reconcile(*, access: ClusterAccess | None = None, now: datetime | None = None) -> ReconcileReport:
    """One pass of the reaper and reconciler; a part a cluster cannot answer is skipped and named,
    and never holds up the other clusters. `access` (tests) replaces every cluster's own."""
    now = now or timezone.now()
    report = ReconcileReport()
    reaped = reap_overdue_runs(now=now)
    report.reaped = [run.pk for run in reaped]
    fresh_since = watch_is_fresh_since(now)
    clusters = list(Cluster.objects.filter(stores__isnull=False).distinct())
    watched = {cluster.pk for cluster in clusters if cluster.watched_at and cluster.watched_at >= fresh_since}
    accesses: dict[int, ClusterAccess] = {}
    for cluster in clusters:
        if cluster.health == ClusterHealth.UNREACHABLE and access is None:
            report.errors.append(f"cluster {cluster.name} skipped: unreachable")
            continue
        try:
            accesses[cluster.pk] = access or ClusterAccess.for_cluster(cluster)
        except ApplicationError as exc:
            report.errors.append(f"cluster {cluster.name} skipped: {exc.message}")
    # Recover releases before the reaped stores retry, so a retry never meets its own pending release.
    for cluster in clusters:
        if cluster.pk not in accesses:
            continue
        recover = _recover_watched if cluster.pk in watched else _recover_unwatched
        try:
            recover(cluster, accesses[cluster.pk], report)
        except CLUSTER_ERRORS as exc:
            report.errors.append(f"release recovery on {cluster.name} skipped: {exc}")
    for run in reaped:
        store_run_interrupted(run=run)
    report.redispatched = redispatch_orphaned_runs(now=now)
    for cluster in clusters:
        if cluster.pk in watched or cluster.pk not in accesses:
            continue  # the watcher reports drift the moment it happens
        try:
            _drift_unwatched(cluster, accesses[cluster.pk], report, now=now)
        except CLUSTER_ERRORS as exc:
            report.errors.append(f"drift check on {cluster.name} skipped: {exc}")
    stores_degrade_overdue(now=now)
    if report.reaped or report.redispatched or report.recovered_releases or report.reprovisioned:
        logger.info("reconcile: %s", report)
    return report
