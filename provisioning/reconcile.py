"""Machinery for the periodic reaper and reconciler, at the level of runs, releases and namespaces.

The store's lifecycle (stores.reconcile) decides what each finding means for a store; this module
only finds and repairs things that are about runs and the cluster:
- runs past their deadline, or whose worker process on this host is gone, become `failed`;
- releases stuck `pending-*` with no live run are recovered (rollback to the last good revision, or
  uninstall of a release that never had one);
- queued runs that never reached the broker (or whose message was lost) are dispatched again;
- which store namespaces and helm releases still exist.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from provisioning import cluster
from provisioning.choices import RunStatus
from provisioning.cluster_access import ClusterAccess
from provisioning.helm import HelmClient, HelmError, HelmInvocation
from provisioning.models import ProvisioningRun
from provisioning.pending_release import pending_release_settle
from provisioning.recording import RunRecorder
from provisioning.services import provisioning_run_dispatch, run_transition

# A run stored but never handed to the broker is dispatched again after this long.
UNDISPATCHED_GRACE = timedelta(seconds=10)


@dataclass
class ReconcileReport:
    """What one pass did; `errors` names the parts it had to skip."""

    reaped: list[int] = field(default_factory=list)
    redispatched: list[int] = field(default_factory=list)
    recovered_releases: list[str] = field(default_factory=list)
    reprovisioned: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ReleaseLocation:
    """Where to look for a pending release, and which run to record the recovery on."""

    namespace: str
    record_on_run_id: int | None


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


def reap_overdue_runs(*, now: datetime | None = None) -> list[ProvisioningRun]:
    """Fail running runs whose deadline passed or whose worker died; return the ones this call failed."""
    now = now or timezone.now()
    reaped = []
    for run in ProvisioningRun.objects.filter(status=RunStatus.RUNNING):
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
            run.refresh_from_db()
            reaped.append(run)
    return reaped


def recover_pending_releases(
    *, access: ClusterAccess, locations: Iterable[ReleaseLocation], report: ReconcileReport
) -> None:
    """Roll back to the last good revision (or uninstall) releases left pending-* in these namespaces.

    Namespaces are listed one by one: the platform's least-privilege RBAC can read helm's release
    Secrets inside store namespaces but not across the whole cluster.
    """
    record_on: dict[str, int | None] = {"run_id": None}

    def record(invocation: HelmInvocation) -> None:
        if record_on["run_id"] is not None:
            RunRecorder(record_on["run_id"]).helm(invocation)

    helm = access.helm(record)
    for location in locations:
        for release in helm.list_releases(namespace=location.namespace):
            if not release.is_pending:
                continue
            record_on["run_id"] = location.record_on_run_id
            _settle_pending(helm, release.namespace, release.name, report)


@dataclass(frozen=True)
class PendingRelease:
    """A release the watcher saw left pending-*: where, and the run to record the recovery on."""

    namespace: str
    release: str
    record_on_run_id: int | None


def recover_known_pending_releases(
    *, access: ClusterAccess, pending: Iterable[PendingRelease], report: ReconcileReport
) -> None:
    """Roll back to the last good revision (or uninstall) releases already known to be pending: helm
    runs only for them, never to find them."""
    for item in pending:
        recorder = RunRecorder(item.record_on_run_id) if item.record_on_run_id is not None else None
        helm = access.helm(recorder.helm if recorder else lambda invocation: None)
        _settle_pending(helm, item.namespace, item.release, report)


def _settle_pending(helm: HelmClient, namespace: str, release: str, report: ReconcileReport) -> None:
    try:
        pending_release_settle(
            helm, namespace=namespace, release=release, timeout_seconds=settings.PROVISIONING_HELM_TIMEOUT
        )
        report.recovered_releases.append(f"{namespace}/{release}")
    except HelmError as exc:
        report.errors.append(f"{namespace}/{release}: {exc.message}")


def redispatch_orphaned_runs(*, now: datetime | None = None) -> list[int]:
    """Send queued runs again when they never reached the broker or their message may be lost (not
    sent for longer than the broker's visibility timeout). A message still alive (a waiting run's
    poll) is superseded by the new one and drops itself, so a run never has two."""
    now = now or timezone.now()
    lost_after = timedelta(seconds=settings.PROVISIONING_VISIBILITY_TIMEOUT)
    redispatched = []
    for run in ProvisioningRun.objects.filter(status=RunStatus.QUEUED).order_by("created_at")[:500]:
        never_sent = run.dispatch_count == 0 and now - run.created_at > UNDISPATCHED_GRACE
        lost = run.dispatch_count > 0 and now - (run.dispatched_at or run.created_at) > lost_after
        if (never_sent or lost) and provisioning_run_dispatch(run_id=run.pk):
            redispatched.append(run.pk)
    return redispatched


def existing_managed_namespaces(*, access: ClusterAccess) -> set[str]:
    """Names of the namespaces this platform manages that exist now (one list call)."""
    api = access.api_client_factory()
    try:
        return cluster.managed_namespaces(api)
    finally:
        api.close()


def release_exists(*, access: ClusterAccess, namespace: str, release: str) -> bool:
    """True when helm has a record of `release` in `namespace` (one `helm list -n`)."""
    helm = access.helm(lambda invocation: None)
    return any(found.name == release for found in helm.list_releases(namespace=namespace))
