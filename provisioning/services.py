"""Run rows: create and dispatch, claim, finish, cancel, and the record of each external call.
The single writer of `ProvisioningRun.status`.

Runs belong to a store, but these services never look at the store: the caller (the store's
lifecycle) decides at claim time, through `admit`, whether a run may start.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from provisioning.choices import (
    RUN_ACTIVE_STATUSES,
    RUN_ALLOWED_TRANSITIONS,
    RUN_TERMINAL_STATUSES,
    RunKind,
    RunStatus,
)
from provisioning.models import Cluster, CommandRecord, ProvisioningRun
from provisioning.redaction import clean_output, redact

# The Celery task that executes runs, by its registered name: the task lives with the store's
# lifecycle (stores.tasks), which provisioning does not import.
EXECUTE_RUN_TASK = "provisioning.tasks.execute_run"

logger = logging.getLogger(__name__)

# Arbitrary constant naming the advisory lock that serialises run claims.
CLAIM_LOCK_KEY = 7_351_001


def worker_identity() -> str:
    """host:pid of this process, stored on the runs it claims."""
    return f"{socket.gethostname()}:{os.getpid()}"


def run_transition(*, run_id: int, to: RunStatus, **fields: Any) -> bool:
    """Move a run to `to` with a conditional UPDATE; False if another writer got there first."""
    sources = [source for source, targets in RUN_ALLOWED_TRANSITIONS.items() if to in targets]
    if to in RUN_TERMINAL_STATUSES:
        fields.setdefault("finished_at", timezone.now())
    if "error" in fields:
        fields["error"] = clean_output(fields["error"], limit=4000)
    moved = ProvisioningRun.objects.filter(pk=run_id, status__in=sources).update(status=to, **fields) == 1
    if moved and RunStatus.RUNNING in sources:
        # A run that ended may have freed a helm slot: hand it to the oldest waiting run, once the
        # end is committed (so the claim it leads to sees the slot free).
        transaction.on_commit(_hand_off_after_commit)
    return moved


def _hand_off_after_commit() -> None:
    try:
        provisioning_runs_hand_off()
    except DatabaseError as exc:  # the end is recorded; waiting runs still poll and start later
        logger.warning("freed helm slot not handed off: %s", redact(str(exc)))


def provisioning_run_create(
    *,
    store_id: int,
    kind: RunKind,
    cluster_id: int | None,
    requested_by: Any = None,
    countdown: float | None = None,
) -> ProvisioningRun:
    """Store a queued run and dispatch it to a worker once the caller's transaction commits.

    Must be called inside the transaction that changed the store, so the run and the status change
    are one unit; the task id is chosen here so it is on the row before the broker sees the task.
    """
    attempt = ProvisioningRun.objects.filter(store_id=store_id, kind=kind).count() + 1
    run = ProvisioningRun.objects.create(
        store_id=store_id,
        cluster_id=cluster_id,
        kind=kind,
        attempt=attempt,
        celery_task_id=str(uuid.uuid4()),
        requested_by=requested_by if getattr(requested_by, "pk", None) else None,
    )
    run_id = run.pk
    transaction.on_commit(lambda: provisioning_run_dispatch(run_id=run_id, countdown=countdown))
    return run


def provisioning_run_attempts_in_a_row(*, store_id: int, kind: RunKind) -> int:
    """Runs of this kind for the store since its last successful one: the attempts the current
    operation has used. A store's earlier installs, upgrades and resumes spend none of its retries."""
    runs = ProvisioningRun.objects.filter(store_id=store_id, kind=kind)
    last_success = (
        runs.filter(status=RunStatus.SUCCEEDED).order_by("-pk").values_list("pk", flat=True).first()
    )
    return runs.filter(pk__gt=last_success).count() if last_success is not None else runs.count()


@dataclass(frozen=True)
class _Dispatch:
    """A dispatch number taken for a run, with what to put back if its message cannot be sent."""

    run_id: int
    number: int
    task_id: str
    previous_number: int
    previous_at: Any


def _dispatch_number_take(run_id: int) -> _Dispatch | None:
    # Numbered before the message exists, so a worker that takes it at once finds it current.
    with transaction.atomic():
        run = ProvisioningRun.objects.select_for_update().filter(pk=run_id, status=RunStatus.QUEUED).first()
        if run is None:
            return None
        taken = _Dispatch(
            run.pk, run.dispatch_count + 1, run.celery_task_id, run.dispatch_count, run.dispatched_at
        )
        ProvisioningRun.objects.filter(pk=run_id).update(
            dispatch_count=taken.number, dispatched_at=timezone.now()
        )
    return taken


def _dispatch_send(taken: _Dispatch, countdown: float | None = None) -> bool:
    from platform_site.celery import app

    try:
        # No time limits in the message: the worker's own budget applies, which its helm --timeout is
        # derived from (apply_async on a task object would copy the sender's task_soft_time_limit).
        app.send_task(
            EXECUTE_RUN_TASK,
            args=[taken.run_id],
            kwargs={"dispatch": taken.number},
            task_id=taken.task_id,
            countdown=countdown,
            time_limit=None,
            soft_time_limit=None,
        )
    except Exception as exc:  # kombu raises many connection error types; all mean "not sent"
        logger.warning("run %s not dispatched, the reconciler will retry: %s", taken.run_id, redact(str(exc)))
        # Not sent: the message sent before it (if any) is the live one again.
        ProvisioningRun.objects.filter(pk=taken.run_id, dispatch_count=taken.number).update(
            dispatch_count=taken.previous_number, dispatched_at=taken.previous_at
        )
        return False
    return True


def provisioning_run_dispatch(*, run_id: int, countdown: float | None = None) -> bool:
    """Send a queued run to the broker under a new dispatch number, which supersedes every message
    sent for it before. A broker outage is logged, not raised: the stored run is re-dispatched by the
    reconciler, so the request that created it still succeeds."""
    taken = _dispatch_number_take(run_id)
    return taken is not None and _dispatch_send(taken, countdown)


def provisioning_run_message_superseded(*, run_id: int, dispatch: int | None) -> bool:
    """True when the run has ended or was sent again since message `dispatch` was, so that message
    must drop itself. Messages queued before dispatches were numbered carry None."""
    latest = (
        ProvisioningRun.objects.filter(pk=run_id, status=RunStatus.QUEUED)
        .values_list("dispatch_count", flat=True)
        .first()
    )
    return latest is None or (dispatch is not None and dispatch < latest)


# How many of the oldest waiting runs a hand-off looks through for ones the free slots could start.
HAND_OFF_SCAN = 200
# A run handed a slot holds it this long while its message travels; then a later hand-off may give
# the slot to another run.
HAND_OFF_IN_FLIGHT = timedelta(seconds=15)


def provisioning_runs_hand_off() -> list[int]:
    """Dispatch at once the oldest waiting runs (told busy since their latest dispatch) that the free
    helm slots can start: one per free slot, within each cluster's cap, never a second run of a store.

    Called when a run ends, so a waiting run starts within a message's trip rather than at its next
    safety poll. Serialised with claims: a run told busy just before a slot freed is seen waiting
    here. Returns the runs dispatched.
    """
    now = timezone.now()
    with transaction.atomic():
        _serialise_claims()
        queued = ProvisioningRun.objects.filter(status=RunStatus.QUEUED, told_busy_at__isnull=False)
        in_flight = queued.filter(dispatched_at__gt=F("told_busy_at")).filter(
            dispatched_at__gt=now - HAND_OFF_IN_FLIGHT
        )
        holding = ProvisioningRun.objects.filter(
            Q(status=RunStatus.RUNNING) | Q(pk__in=in_flight.values("pk"))
        ).values_list("cluster_id", "store_id")
        held_per_cluster: dict[int | None, int] = {}
        stores_held: set[int] = set()
        for cluster_id, store_id in holding:
            held_per_cluster[cluster_id] = held_per_cluster.get(cluster_id, 0) + 1
            stores_held.add(store_id)
        free = settings.PROVISIONING_CONCURRENCY - sum(held_per_cluster.values())
        if free <= 0:
            return []
        caps = dict(Cluster.objects.values_list("pk", "helm_concurrency"))
        waiting = (
            queued.filter(Q(dispatched_at__isnull=True) | Q(dispatched_at__lte=F("told_busy_at")))
            .order_by("created_at", "pk")
            .values_list("pk", "cluster_id", "store_id")[:HAND_OFF_SCAN]
        )
        taken: list[_Dispatch] = []
        for run_id, cluster_id, store_id in waiting:
            cap = caps.get(cluster_id)
            if store_id in stores_held or (cap is not None and held_per_cluster.get(cluster_id, 0) >= cap):
                continue
            number = _dispatch_number_take(run_id)
            if number is None:
                continue
            taken.append(number)
            stores_held.add(store_id)
            held_per_cluster[cluster_id] = held_per_cluster.get(cluster_id, 0) + 1
            if len(taken) == free:
                break
    # Sent after the commit: the claim lock is never held across a broker call.
    return [item.run_id for item in taken if _dispatch_send(item)]


def _serialise_claims() -> None:
    """Make claims one at a time, so the concurrency cap cannot be overrun by two simultaneous claims.

    PostgreSQL: a transaction-scoped advisory lock. SQLite: transactions already take the write lock
    at BEGIN (transaction_mode IMMEDIATE in settings).
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CLAIM_LOCK_KEY])


class ClaimStatus(StrEnum):
    CLAIMED = "claimed"  # this worker owns the run now; execute it
    BUSY = "busy"  # another run of the store, or the concurrency cap: ask again shortly
    REFUSED = "refused"  # the owner said it must not start; the run is cancelled with its reason
    HANDLED = "handled"  # gone, or already claimed by another process: nothing to do


@dataclass(frozen=True)
class Admission:
    """The owner's answer at claim time: start the run, or cancel it with a reason."""

    start: bool
    reason: str = ""


@dataclass(frozen=True)
class ClaimResult:
    """What happened when a worker tried to claim a run."""

    status: ClaimStatus
    run: ProvisioningRun | None = None
    reason: str = ""


def provisioning_run_claim(
    *, run_id: int, worker: str, admit: Callable[[ProvisioningRun], Admission]
) -> ClaimResult:
    """Claim a queued run for this worker in one short transaction.

    Claims are serialised (advisory lock) and at most one run of a store runs at a time, so helm never
    runs twice at once on one release, PROVISIONING_CONCURRENCY holds across the platform and each
    cluster's helm_concurrency on that cluster. `admit` is called inside the
    same transaction, after those checks, to let the run's owner lock its row and agree or refuse.
    """
    now = timezone.now()
    with transaction.atomic():
        run = ProvisioningRun.objects.filter(pk=run_id).first()
        if run is None or run.status != RunStatus.QUEUED:
            return ClaimResult(ClaimStatus.HANDLED, reason="handled by another process")
        _serialise_claims()
        busy = _no_slot_for(run)
        if busy:
            # From now on it is one of the waiting runs the next freed slot is handed to.
            ProvisioningRun.objects.filter(pk=run.pk).update(told_busy_at=timezone.now())
            return ClaimResult(ClaimStatus.BUSY, reason=busy)
        admission = admit(run)
        if not admission.start:
            run_transition(run_id=run.pk, to=RunStatus.CANCELLED, error=f"Not started: {admission.reason}")
            return ClaimResult(ClaimStatus.REFUSED, reason=admission.reason)
        deadline = now + timedelta(seconds=settings.PROVISIONING_TASK_TIME_LIMIT + 30)
        if not run_transition(
            run_id=run.pk, to=RunStatus.RUNNING, started_at=now, deadline=deadline, worker=worker
        ):
            return ClaimResult(ClaimStatus.HANDLED, reason="handled by another process")
    run.refresh_from_db()
    return ClaimResult(ClaimStatus.CLAIMED, run)


def _no_slot_for(run: ProvisioningRun) -> str:
    """Why the run cannot start now (another run of its store, or a helm cap reached), or ""."""
    if ProvisioningRun.objects.filter(store_id=run.store_id, status=RunStatus.RUNNING).exists():
        return "another run of this store is in progress"
    running = ProvisioningRun.objects.filter(status=RunStatus.RUNNING)
    if running.count() >= settings.PROVISIONING_CONCURRENCY:
        return "PROVISIONING_CONCURRENCY helm runs are in progress"
    if run.cluster_id is not None:
        cap = Cluster.objects.filter(pk=run.cluster_id).values_list("helm_concurrency", flat=True).first()
        if cap is not None and running.filter(cluster_id=run.cluster_id).count() >= cap:
            return "the cluster's helm_concurrency runs are in progress"
    return ""


def provisioning_run_finish(
    *, run_id: int, succeeded: bool, error: str = "", helm_seconds: float | None = None
) -> bool:
    """Close a running run. Returns False if the reaper already closed it."""
    fields: dict[str, Any] = {"helm_seconds": helm_seconds} if helm_seconds is not None else {}
    if succeeded:
        return run_transition(run_id=run_id, to=RunStatus.SUCCEEDED, **fields)
    return run_transition(run_id=run_id, to=RunStatus.FAILED, error=error, **fields)


def provisioning_runs_cancel_queued(*, store_id: int, kind: RunKind, reason: str) -> int:
    """Cancel the store's queued runs of `kind` (a running one finishes first); returns how many."""
    queued = ProvisioningRun.objects.filter(store_id=store_id, kind=kind, status=RunStatus.QUEUED)
    return sum(
        run_transition(run_id=pk, to=RunStatus.CANCELLED, error=reason)
        for pk in queued.values_list("pk", flat=True)
    )


def provisioning_run_active_exists(*, store_id: int, kind: RunKind) -> bool:
    """True while the store has a queued or running run of `kind`."""
    return ProvisioningRun.objects.filter(
        store_id=store_id, kind=kind, status__in=RUN_ACTIVE_STATUSES
    ).exists()


def command_record_create(
    *,
    run_id: int,
    tool: str,
    argv: list[str],
    exit_code: int | None,
    started_at: Any,
    duration_seconds: float,
    output: str = "",
) -> CommandRecord:
    """Record one external call that changed something; argv and output are redacted and capped."""
    return CommandRecord.objects.create(
        run_id=run_id,
        tool=tool,
        argv=[redact(str(arg)) for arg in argv],
        exit_code=exit_code,
        started_at=started_at,
        duration_seconds=duration_seconds,
        output=clean_output(output),
    )
