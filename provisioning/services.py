"""Run lifecycle: create and dispatch, claim, finish. The single writer of `ProvisioningRun.status`."""

from __future__ import annotations

import logging
import os
import socket
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from provisioning.choices import RUN_ALLOWED_TRANSITIONS, RunKind, RunStatus
from provisioning.models import CommandRecord, ProvisioningRun
from provisioning.redaction import clean_output, redact
from stores.choices import StoreStatus
from stores.models import Store
from stores.transitions import store_transition

logger = logging.getLogger(__name__)

# Arbitrary constant naming the advisory lock that serialises run claims.
CLAIM_LOCK_KEY = 7_351_001


def worker_identity() -> str:
    """host:pid of this process, stored on the runs it claims."""
    return f"{socket.gethostname()}:{os.getpid()}"


def run_transition(*, run_id: int, to: RunStatus, **fields: Any) -> bool:
    """Move a run to `to` with a conditional UPDATE; False if another writer got there first."""
    sources = [source for source, targets in RUN_ALLOWED_TRANSITIONS.items() if to in targets]
    if to in {RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED}:
        fields.setdefault("finished_at", timezone.now())
    if "error" in fields:
        fields["error"] = clean_output(fields["error"], limit=4000)
    return ProvisioningRun.objects.filter(pk=run_id, status__in=sources).update(status=to, **fields) == 1


def provisioning_run_create(
    *, store: Store, kind: RunKind, requested_by: Any = None, countdown: float | None = None
) -> ProvisioningRun:
    """Store a queued run and dispatch it to a worker once the caller's transaction commits.

    Must be called inside the transaction that changed the store, so the run and the status change
    are one unit; the task id is chosen here so it is on the row before the broker sees the task.
    """
    attempt = ProvisioningRun.objects.filter(store=store, kind=kind).count() + 1
    run = ProvisioningRun.objects.create(
        store=store,
        kind=kind,
        attempt=attempt,
        celery_task_id=str(uuid.uuid4()),
        requested_by=requested_by if getattr(requested_by, "pk", None) else None,
    )
    run_id = run.pk
    transaction.on_commit(lambda: provisioning_run_dispatch(run_id=run_id, countdown=countdown))
    return run


def provisioning_run_dispatch(*, run_id: int, countdown: float | None = None) -> bool:
    """Send a queued run to the broker. A broker outage is logged, not raised: the stored run is
    re-dispatched by the reconciler, so the request that created it still succeeds."""
    from provisioning.tasks import execute_run

    run = ProvisioningRun.objects.filter(pk=run_id, status=RunStatus.QUEUED).first()
    if run is None:
        return False
    try:
        # time limits of None: apply_async would otherwise copy the *sender's* task_soft_time_limit into
        # the message and override the worker's own budget, which its helm --timeout is derived from.
        execute_run.apply_async(
            args=[run.pk],
            task_id=run.celery_task_id,
            countdown=countdown,
            time_limit=None,
            soft_time_limit=None,
        )
    except Exception as exc:  # kombu raises many connection error types; all mean "not sent"
        logger.warning("run %s not dispatched, the reconciler will retry: %s", run_id, redact(str(exc)))
        return False
    ProvisioningRun.objects.filter(pk=run_id).update(dispatch_count=run.dispatch_count + 1)
    return True


def _serialise_claims() -> None:
    """Make claims one at a time, so the concurrency cap cannot be overrun by two simultaneous claims.

    PostgreSQL: a transaction-scoped advisory lock. SQLite: transactions already take the write lock
    at BEGIN (transaction_mode IMMEDIATE in settings).
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CLAIM_LOCK_KEY])


@dataclass(frozen=True)
class ClaimResult:
    """What happened when a worker tried to claim a run."""

    run: ProvisioningRun | None
    busy: bool = False  # another run of this store is running; try again later
    reason: str = ""


def provisioning_run_claim(*, run_id: int, worker: str) -> ClaimResult:
    """Claim a queued run for this worker in one short transaction.

    The store row is locked while claiming, so two runs of one store never both become RUNNING and
    helm never runs twice at once on one release. A provision run also moves the store to
    PROVISIONING here; if the store moved on (deleted meanwhile), the run is cancelled.
    """
    now = timezone.now()
    with transaction.atomic():
        run = ProvisioningRun.objects.filter(pk=run_id).first()
        if run is None or run.status != RunStatus.QUEUED:
            return ClaimResult(None, reason="handled by another process")
        _serialise_claims()
        store = Store.objects.select_for_update().get(pk=run.store_id)
        if ProvisioningRun.objects.filter(store_id=store.pk, status=RunStatus.RUNNING).exists():
            return ClaimResult(None, busy=True, reason="another run of this store is in progress")
        if (
            ProvisioningRun.objects.filter(status=RunStatus.RUNNING).count()
            >= settings.PROVISIONING_CONCURRENCY
        ):
            return ClaimResult(None, busy=True, reason="PROVISIONING_CONCURRENCY helm runs are in progress")
        if run.kind == RunKind.PROVISION:
            if store.status == StoreStatus.REQUESTED:
                store_transition(
                    store_id=store.pk,
                    to=StoreStatus.PROVISIONING,
                    reason=f"Provisioning attempt {run.attempt} started.",
                    actor_label=worker,
                    only_from=[StoreStatus.REQUESTED],
                )
            elif store.status != StoreStatus.PROVISIONING:
                run_transition(
                    run_id=run.pk,
                    to=RunStatus.CANCELLED,
                    error=f"Not started: the store is {store.status}.",
                )
                return ClaimResult(None, reason=f"store is {store.status}")
        elif store.status != StoreStatus.DELETING:
            run_transition(
                run_id=run.pk, to=RunStatus.CANCELLED, error=f"Not started: the store is {store.status}."
            )
            return ClaimResult(None, reason=f"store is {store.status}")
        deadline = now + timedelta(seconds=settings.PROVISIONING_TASK_TIME_LIMIT + 30)
        if not run_transition(
            run_id=run.pk, to=RunStatus.RUNNING, started_at=now, deadline=deadline, worker=worker
        ):
            return ClaimResult(None, reason="handled by another process")
    run.refresh_from_db()
    return ClaimResult(run)


def provisioning_run_finish(
    *, run_id: int, succeeded: bool, error: str = "", helm_seconds: float | None = None
) -> bool:
    """Close a running run. Returns False if the reaper already closed it."""
    fields: dict[str, Any] = {"helm_seconds": helm_seconds} if helm_seconds is not None else {}
    if succeeded:
        return run_transition(run_id=run_id, to=RunStatus.SUCCEEDED, **fields)
    return run_transition(run_id=run_id, to=RunStatus.FAILED, error=error, **fields)


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
