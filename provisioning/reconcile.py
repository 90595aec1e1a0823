"""The reaper and reconciler, run periodically by Celery beat.

- Runs past their deadline, or whose worker process on this host is gone, become `failed` with a reason
  a person can act on; the store is retried automatically a bounded number of times.
- Releases stuck `pending-*` with no live run are recovered (rollback, or uninstall of a first revision).
- Queued runs that never reached the broker (or whose message was lost) are dispatched again.
- Ready stores whose namespace or release vanished are re-provisioned.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from kubernetes.client import ApiException
from urllib3.exceptions import HTTPError

from provisioning import cluster
from provisioning.choices import RunKind, RunStatus
from provisioning.engine import AUTO_RETRY_LIMIT, ClusterAccess, _RunRecorder
from provisioning.helm import HelmError, HelmInvocation
from provisioning.kube import ClusterNotConfigured
from provisioning.models import ProvisioningRun
from provisioning.services import provisioning_run_create, provisioning_run_dispatch, run_transition
from stores.choices import StoreStatus
from stores.models import Store
from stores.transitions import store_transition

logger = logging.getLogger(__name__)

# A run stored but never handed to the broker is dispatched again after this long.
UNDISPATCHED_GRACE = timedelta(seconds=10)
# A ready store is checked for a vanished namespace or release only once it has been ready this long.
READY_SETTLE = timedelta(seconds=60)
# Bounds on helm calls per pass (one `helm list -n` per namespace).
PENDING_RELEASE_SCAN_LIMIT = 200
RELEASE_CHECK_SAMPLE = 50


@dataclass
class ReconcileReport:
    reaped: list[int] = field(default_factory=list)
    redispatched: list[int] = field(default_factory=list)
    recovered_releases: list[str] = field(default_factory=list)
    reprovisioned: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _worker_is_dead(worker: str) -> bool:
    """True only when the claiming worker ran on this host and its process no longer exists."""
    host, _, pid = worker.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    # A killed process whose parent died too can linger as a zombie until init reaps it.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state == "Z"


def reap_overdue_runs(*, now=None) -> list[ProvisioningRun]:
    """Fail running runs whose deadline passed or whose worker died; return the ones this call failed."""
    now = now or timezone.now()
    reaped = []
    for run in ProvisioningRun.objects.filter(status=RunStatus.RUNNING).select_related("store"):
        overdue = run.deadline is not None and run.deadline < now
        dead = _worker_is_dead(run.worker)
        if not (overdue or dead):
            continue
        why = (
            f"the worker {run.worker} stopped while running it"
            if dead
            else f"it was still running at its deadline {run.deadline:%Y-%m-%d %H:%M:%S} UTC"
        )
        error = f"{run.get_kind_display()} attempt {run.attempt} was interrupted: {why}."
        if run_transition(run_id=run.pk, to=RunStatus.FAILED, error=error):
            reaped.append(run)
    return reaped


def recover_pending_releases(access: ClusterAccess, report: ReconcileReport) -> None:
    """Roll back (or uninstall a first revision of) releases left pending-* by a run that is gone.

    Only stores that are not settled and have no running run can hold such a release, so only their
    namespaces are listed, one by one: the platform's least-privilege RBAC can read helm's release
    Secrets inside store namespaces but not across the whole cluster.
    """
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
    record_on: dict[str, int | None] = {"run_id": None}

    def record(invocation: HelmInvocation) -> None:
        if record_on["run_id"] is not None:
            _RunRecorder(record_on["run_id"]).helm(invocation)

    helm = access.helm(record)
    for store in suspects:
        for release in helm.list_releases(namespace=store.namespace):
            if not release.is_pending:
                continue
            record_on["run_id"] = _latest_run_id(store)
            try:
                if release.revision <= 1:
                    helm.uninstall(
                        release=release.name,
                        namespace=release.namespace,
                        timeout_seconds=settings.PROVISIONING_HELM_TIMEOUT,
                    )
                else:
                    helm.rollback(
                        release=release.name,
                        namespace=release.namespace,
                        revision=release.revision - 1,
                        timeout_seconds=settings.PROVISIONING_HELM_TIMEOUT,
                    )
                report.recovered_releases.append(f"{release.namespace}/{release.name}")
            except HelmError as exc:
                report.errors.append(f"{release.namespace}/{release.name}: {exc.message}")


def _latest_run_id(store: Store | None) -> int | None:
    if store is None:
        return None
    return (
        ProvisioningRun.objects.filter(store=store)
        .order_by("-created_at", "-id")
        .values_list("pk", flat=True)
        .first()
    )


def settle_reaped(reaped: list[ProvisioningRun]) -> None:
    """Move each reaped run's store to failed with the reason, and retry automatically within the cap."""
    for run in reaped:
        source = StoreStatus.PROVISIONING if run.kind == RunKind.PROVISION else StoreStatus.DELETING
        attempts = ProvisioningRun.objects.filter(store_id=run.store_id, kind=run.kind).count()
        retry = attempts <= AUTO_RETRY_LIMIT
        reason = run.error + (" Retrying automatically." if retry else " Retry when the cluster is healthy.")
        with transaction.atomic():
            moved = store_transition(
                store_id=run.store_id,
                to=StoreStatus.FAILED,
                reason=reason,
                actor_label="reaper",
                only_from=[source],
            )
            if not (moved and retry):
                continue
            target = StoreStatus.REQUESTED if run.kind == RunKind.PROVISION else StoreStatus.DELETING
            if store_transition(
                store_id=run.store_id,
                to=target,
                reason="Automatic retry after an interruption.",
                actor_label="reaper",
            ):
                provisioning_run_create(store=run.store, kind=RunKind(run.kind))


def redispatch_orphaned_runs(*, now=None) -> list[int]:
    """Send queued runs again when they never reached the broker or their message was lost."""
    now = now or timezone.now()
    lost_after = timedelta(seconds=settings.PROVISIONING_VISIBILITY_TIMEOUT)
    redispatched = []
    for run in ProvisioningRun.objects.filter(status=RunStatus.QUEUED).order_by("created_at")[:500]:
        age = now - run.created_at
        never_sent = run.dispatch_count == 0 and age > UNDISPATCHED_GRACE
        lost = run.dispatch_count > 0 and age > lost_after * run.dispatch_count
        if (never_sent or lost) and provisioning_run_dispatch(run_id=run.pk):
            redispatched.append(run.pk)
    return redispatched


def reprovision_vanished_stores(access: ClusterAccess, report: ReconcileReport, *, now=None) -> None:
    """Re-provision ready stores whose namespace or helm release no longer exists.

    Namespaces are checked for every ready store with one list call. Releases need one helm call per
    namespace, so each pass checks a bounded sample, least recently changed first.
    """
    now = now or timezone.now()
    candidates = list(
        Store.objects.filter(status=StoreStatus.READY, status_changed_at__lt=now - READY_SETTLE).only(
            "pk", "name", "namespace", "release_name"
        )
    )
    if not candidates:
        return
    api = access.api_client_factory()
    try:
        namespaces = cluster.managed_namespaces(api)
    finally:
        api.close()
    helm = access.helm(lambda invocation: None)
    sampled = {
        store.pk
        for store in secrets.SystemRandom().sample(candidates, min(len(candidates), RELEASE_CHECK_SAMPLE))
    }
    for store in candidates:
        if store.namespace not in namespaces:
            missing = f"namespace {store.namespace}"
        elif store.pk in sampled and not any(
            release.name == store.release_name for release in helm.list_releases(namespace=store.namespace)
        ):
            missing = f"helm release {store.release_name}"
        else:
            continue
        with transaction.atomic():
            if store_transition(
                store_id=store.pk,
                to=StoreStatus.REQUESTED,
                reason=f"The store's {missing} vanished from the cluster; re-provisioning.",
                actor_label="reconciler",
                only_from=[StoreStatus.READY],
            ):
                provisioning_run_create(store=store, kind=RunKind.PROVISION)
                report.reprovisioned.append(store.name)


def reconcile(*, access: ClusterAccess | None = None) -> ReconcileReport:
    """One pass of the reaper and reconciler."""
    access = access or ClusterAccess()
    report = ReconcileReport()
    reaped = reap_overdue_runs()
    report.reaped = [run.pk for run in reaped]
    try:
        recover_pending_releases(access, report)
    except (HelmError, ClusterNotConfigured, ApiException, HTTPError, OSError) as exc:
        report.errors.append(f"release recovery skipped: {exc}")
    settle_reaped(reaped)
    report.redispatched = redispatch_orphaned_runs()
    try:
        reprovision_vanished_stores(access, report)
    except (HelmError, ClusterNotConfigured, ApiException, HTTPError, OSError) as exc:
        report.errors.append(f"drift check skipped: {exc}")
    if report.reaped or report.redispatched or report.recovered_releases or report.reprovisioned:
        logger.info("reconcile: %s", report)
    return report
