"""One pass of the reaper and reconciler (Celery beat): provisioning's machinery finds interrupted
runs, pending releases, lost messages and vanished namespaces or releases; every store it concerns
is moved by the lifecycle (stores.lifecycle), never here."""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta

from django.utils import timezone
from kubernetes.client import ApiException
from urllib3.exceptions import HTTPError

from provisioning.choices import RunStatus
from provisioning.cluster_access import ClusterAccess, ClusterNotConfigured
from provisioning.helm import HelmError
from provisioning.models import ProvisioningRun
from provisioning.reconcile import (
    ReconcileReport,
    ReleaseLocation,
    existing_managed_namespaces,
    reap_overdue_runs,
    recover_pending_releases,
    redispatch_orphaned_runs,
    release_exists,
)
from stores.choices import StoreStatus
from stores.lifecycle import store_drifted, store_run_interrupted
from stores.models import Store

logger = logging.getLogger(__name__)

# A ready store is checked for a vanished namespace or release only once it has been ready this long.
READY_SETTLE = timedelta(seconds=60)
# Bounds on helm calls per pass (one `helm list -n` per namespace).
PENDING_RELEASE_SCAN_LIMIT = 200
RELEASE_CHECK_SAMPLE = 50
CLUSTER_ERRORS = (HelmError, ClusterNotConfigured, ApiException, HTTPError, OSError)


def _pending_release_locations() -> list[ReleaseLocation]:
    """Only stores that are not settled and have no running run can hold a pending-* release."""
    suspects = (
        Store.objects.filter(
            status__in=[
                StoreStatus.FAILED,
                StoreStatus.REQUESTED,
                StoreStatus.PROVISIONING,
                StoreStatus.DELETING,
            ]
        )
        .exclude(runs__status=RunStatus.RUNNING)
        .order_by("status_changed_at")
        .only("pk", "namespace")[:PENDING_RELEASE_SCAN_LIMIT]
    )
    # Recovery calls are recorded on the store's latest run: the one that left the release pending.
    return [
        ReleaseLocation(
            namespace=store.namespace,
            record_on_run_id=ProvisioningRun.objects.filter(store_id=store.pk)
            .order_by("-created_at", "-id")
            .values_list("pk", flat=True)
            .first(),
        )
        for store in suspects
    ]


def _reprovision_drifted(access: ClusterAccess, report: ReconcileReport, *, now: datetime) -> None:
    """Ready stores whose namespace (every store, one list call) or helm release (a bounded sample,
    one helm call each) vanished are provisioned again."""
    candidates = list(
        Store.objects.filter(status=StoreStatus.READY, status_changed_at__lt=now - READY_SETTLE).only(
            "pk", "name", "namespace", "release_name"
        )
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
    """One pass of the reaper and reconciler; a part the cluster cannot answer is skipped and named."""
    access = access or ClusterAccess()
    now = now or timezone.now()
    report = ReconcileReport()
    reaped = reap_overdue_runs(now=now)
    report.reaped = [run.pk for run in reaped]
    # Recover releases before the reaped stores retry, so a retry never meets its own pending release.
    try:
        recover_pending_releases(access=access, locations=_pending_release_locations(), report=report)
    except CLUSTER_ERRORS as exc:
        report.errors.append(f"release recovery skipped: {exc}")
    for run in reaped:
        store_run_interrupted(run=run)
    report.redispatched = redispatch_orphaned_runs(now=now)
    try:
        _reprovision_drifted(access, report, now=now)
    except CLUSTER_ERRORS as exc:
        report.errors.append(f"drift check skipped: {exc}")
    if report.reaped or report.redispatched or report.recovered_releases or report.reprovisioned:
        logger.info("reconcile: %s", report)
    return report
