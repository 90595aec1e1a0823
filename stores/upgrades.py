"""Staged engine upgrades: new stores get their engine's default version; a rollout moves a selection
of ready stores to a target version batch by batch, each store upgrade being an ordinary provision
run (helm upgrade --install with the version's images, rolled back by helm if it fails), and stops
by itself when a batch fails over its threshold, putting the failed stores back on their previous
version.

`rollout_advance` is the one step function, run periodically by a Celery task: it never waits on a
helm run; it reads where the batch's stores are and decides. Nothing is held across a run.

Where backups are configured, each store of a batch is first backed up and the backup's restore drill
must pass (the backup `verified`) before its upgrade is queued; a store whose backup fails is not
upgraded and counts as a failure of its batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from platform_site.errors import ApplicationError
from provisioning.choices import RunKind
from provisioning.services import provisioning_run_create
from stores.backups import BackupsNotConfigured, backup_request, bucket_credentials
from stores.choices import (
    ROLLOUT_ALLOWED_TRANSITIONS,
    BackupKind,
    BackupStatus,
    EngineVersionState,
    RolloutItemStatus,
    RolloutSelection,
    RolloutStatus,
    StoreStatus,
)
from stores.models import EngineVersion, Rollout, RolloutItem, Store
from stores.transitions import store_transition

ACTIVE_ITEM_STATUSES = frozenset(
    {RolloutItemStatus.BACKING_UP, RolloutItemStatus.UPGRADING, RolloutItemStatus.ROLLING_BACK}
)


class RolloutInvalid(ApplicationError):
    code = "invalid_rollout"
    http_status = 400


class RolloutStateInvalid(ApplicationError):
    code = "invalid_state"
    http_status = 409


def engine_version_default(*, engine: str) -> EngineVersion | None:
    """The version new stores of `engine` get (None until staff mark one default)."""
    return EngineVersion.objects.filter(engine=engine, state=EngineVersionState.DEFAULT).first()


def _selected_stores(rollout: Rollout) -> QuerySet[Store]:
    stores = Store.objects.filter(engine=rollout.target.engine, status=StoreStatus.READY).exclude(
        engine_version=rollout.target
    )
    if rollout.selection == RolloutSelection.PLAN:
        stores = stores.filter(tenant__plan=rollout.plan)
    elif rollout.selection == RolloutSelection.TENANT:
        stores = stores.filter(tenant=rollout.tenant)
    elif rollout.selection == RolloutSelection.LIST:
        stores = stores.filter(name__in=rollout.store_names)
    return stores.order_by("created_at", "id")


def rollout_check(
    *,
    target: EngineVersion,
    selection: str = RolloutSelection.ALL,
    plan: Any = None,
    tenant: Any = None,
    store_names: list[str] | None = None,
    batch_size: int = 5,
) -> None:
    """RolloutInvalid, naming the field, unless these settings make a rollout (the admin form asks
    before saving, rollout_create again)."""
    if target.state == EngineVersionState.RETIRED:
        raise RolloutInvalid(
            f"{target} is retired; pick an available version.", fields={"target": ["Retired."]}
        )
    if batch_size < 1:
        raise RolloutInvalid("A batch needs at least one store.", fields={"batch_size": ["At least 1."]})
    if selection == RolloutSelection.PLAN and plan is None:
        raise RolloutInvalid("Pick the plan whose stores to upgrade.", fields={"plan": ["Required."]})
    if selection == RolloutSelection.TENANT and tenant is None:
        raise RolloutInvalid(
            "Pick the organisation whose stores to upgrade.", fields={"tenant": ["Required."]}
        )
    if selection == RolloutSelection.LIST and not store_names:
        raise RolloutInvalid("List the stores to upgrade.", fields={"store_names": ["Required."]})
    probe = Rollout(
        target=target, selection=selection, plan=plan, tenant=tenant, store_names=list(store_names or [])
    )
    if not _selected_stores(probe).exists():
        raise RolloutInvalid("No ready store of this engine is selected that is not on this version already.")


def rollout_create(
    *,
    target: EngineVersion,
    selection: str = RolloutSelection.ALL,
    plan: Any = None,
    tenant: Any = None,
    store_names: list[str] | None = None,
    batch_size: int = 5,
    pause_seconds: int = 60,
    max_failures: int = 0,
    actor: Any = None,
) -> Rollout:
    """Plan a rollout: its stores (ready, of the target's engine, not on it yet) in batches. The first
    batch is the canary. Nothing is upgraded until `rollout_start`."""
    rollout_check(
        target=target,
        selection=selection,
        plan=plan,
        tenant=tenant,
        store_names=store_names,
        batch_size=batch_size,
    )
    with transaction.atomic():
        rollout = Rollout(
            target=target,
            selection=selection,
            plan=plan,
            tenant=tenant,
            store_names=list(store_names or []),
            batch_size=batch_size,
            pause_seconds=pause_seconds,
            max_failures=max_failures,
            created_by=actor if getattr(actor, "pk", None) else None,
        )
        rollout.full_clean()
        rollout.save()
        RolloutItem.objects.bulk_create(
            RolloutItem(
                rollout=rollout,
                store=store,
                batch=index // batch_size + 1,
                previous_version=store.engine_version,
            )
            for index, store in enumerate(_selected_stores(rollout))
        )
    return rollout


def rollout_transition(*, rollout_id: int, to: RolloutStatus, reason: str = "") -> bool:
    """The one writer of `Rollout.status`: a conditional UPDATE from the statuses allowed to move."""
    sources = [source for source, targets in ROLLOUT_ALLOWED_TRANSITIONS.items() if to in targets]
    fields: dict[str, Any] = {"status": to, "status_reason": reason}
    if to in {RolloutStatus.SUCCEEDED, RolloutStatus.STOPPED, RolloutStatus.CANCELLED}:
        fields["finished_at"] = timezone.now()
    return Rollout.objects.filter(pk=rollout_id, status__in=sources).update(**fields) == 1


def _command(rollout: Rollout, to: RolloutStatus, reason: str) -> Rollout:
    if not rollout_transition(rollout_id=rollout.pk, to=to, reason=reason):
        current = Rollout.objects.get(pk=rollout.pk).get_status_display().lower()
        raise RolloutStateInvalid(f"The rollout is {current}; it cannot be {to.label.lower()} now.")
    return Rollout.objects.get(pk=rollout.pk)


def rollout_start(*, rollout: Rollout) -> Rollout:
    """Start a pending rollout (its first batch begins at the next step) or resume a paused one."""
    return _command(
        rollout, RolloutStatus.RUNNING, "Started." if rollout.status == RolloutStatus.PENDING else "Resumed."
    )


def rollout_pause(*, rollout: Rollout) -> Rollout:
    """Let the batch in flight finish, start no new one."""
    return _command(rollout, RolloutStatus.PAUSED, "Paused by staff.")


def rollout_cancel(*, rollout: Rollout) -> Rollout:
    """Stop for good; stores already upgraded stay upgraded, waiting ones are skipped."""
    cancelled = _command(rollout, RolloutStatus.CANCELLED, "Cancelled by staff.")
    RolloutItem.objects.filter(rollout=rollout, status=RolloutItemStatus.PENDING).update(
        status=RolloutItemStatus.SKIPPED, reason="The rollout was cancelled."
    )
    return cancelled


def _reprovision(
    item: RolloutItem, *, version: EngineVersion | None, from_status: StoreStatus, reason: str
) -> bool:
    """Point the store at `version` and queue its provision run (helm upgrade --install), in one
    transaction with the status move; False if the store was not in `from_status` any more."""
    with transaction.atomic():
        if not store_transition(
            store_id=item.store_id, to=StoreStatus.REQUESTED, reason=reason, only_from=[from_status]
        ):
            return False
        Store.objects.filter(pk=item.store_id).update(engine_version=version)
        store = Store.objects.get(pk=item.store_id)
        provisioning_run_create(store_id=store.pk, kind=RunKind.PROVISION, cluster_id=store.cluster_id)
    return True


def _backups_configured() -> bool:
    try:
        bucket_credentials()
    except BackupsNotConfigured:
        return False
    return True


def _upgrade(item: RolloutItem, rollout: Rollout, now: datetime) -> bool:
    """Queue the store's upgrade to the target (its provision run); skipped if it is not ready."""
    if _reprovision(
        item, version=rollout.target, from_status=StoreStatus.READY, reason=f"Upgrading to {rollout.target}."
    ):
        RolloutItem.objects.filter(pk=item.pk).update(status=RolloutItemStatus.UPGRADING, started_at=now)
        return True
    RolloutItem.objects.filter(pk=item.pk).update(
        status=RolloutItemStatus.SKIPPED, reason="The store was not ready when its upgrade was to start."
    )
    return False


def _back_up_first(item: RolloutItem, now: datetime) -> bool:
    """Ask for the verified backup the upgrade waits for; a refusal fails the item, store untouched."""
    try:
        backup = backup_request(store=item.store, kind=BackupKind.UPGRADE)
    except ApplicationError as exc:
        RolloutItem.objects.filter(pk=item.pk).update(
            status=RolloutItemStatus.FAILED,
            reason=f"No backup could be taken before the upgrade ({exc.message}); the store was not upgraded.",
            finished_at=now,
        )
        return False
    RolloutItem.objects.filter(pk=item.pk).update(
        status=RolloutItemStatus.BACKING_UP, backup=backup, started_at=now
    )
    return True


def _settle_backup(item: RolloutItem, rollout: Rollout, now: datetime) -> None:
    """A backing-up store: upgrade it once its backup is verified; fail it if the backup failed."""
    backup = item.backup
    if backup is None or backup.status in {BackupStatus.FAILED, BackupStatus.EXPIRED}:
        why = (backup.failure_reason or backup.status_reason) if backup else "the backup is gone"
        RolloutItem.objects.filter(pk=item.pk, status=RolloutItemStatus.BACKING_UP).update(
            status=RolloutItemStatus.FAILED,
            reason=f"The backup before the upgrade failed ({why}); the store was not upgraded.",
            finished_at=now,
        )
    elif backup.status == BackupStatus.VERIFIED:
        _upgrade(item, rollout, now)


def _settle_items(rollout: Rollout, now: datetime) -> None:
    """Follow each store of the batch in flight: a backing-up one to its backup, an upgrading or
    rolling-back one to where its run left it."""
    for item in rollout.items.filter(status__in=ACTIVE_ITEM_STATUSES).select_related("store", "backup"):
        if item.status == RolloutItemStatus.BACKING_UP:
            _settle_backup(item, rollout, now)
            continue
        status, reason = item.store.status, item.store.status_reason
        if status == StoreStatus.READY:
            done = (
                RolloutItemStatus.SUCCEEDED
                if item.status == RolloutItemStatus.UPGRADING
                else RolloutItemStatus.ROLLED_BACK
            )
            RolloutItem.objects.filter(pk=item.pk, status=item.status).update(status=done, finished_at=now)
        elif status == StoreStatus.FAILED:
            if item.status == RolloutItemStatus.UPGRADING:
                RolloutItem.objects.filter(pk=item.pk, status=item.status).update(
                    status=RolloutItemStatus.FAILED, reason=reason, finished_at=now
                )
            else:
                RolloutItem.objects.filter(pk=item.pk, status=item.status).update(
                    status=RolloutItemStatus.FAILED,
                    reason=f"The rollback failed too: {reason}",
                    finished_at=now,
                )
        elif status not in {StoreStatus.REQUESTED, StoreStatus.PROVISIONING}:
            RolloutItem.objects.filter(pk=item.pk, status=item.status).update(
                status=RolloutItemStatus.FAILED,
                reason=f"The store became {status} during the upgrade.",
                finished_at=now,
            )


@dataclass(frozen=True)
class AdvanceResult:
    status: str
    batch: int
    started: int = 0  # stores whose upgrade began in this step


def _stop(rollout: Rollout, failed: list[RolloutItem]) -> None:
    words = "; ".join(f"{item.store.name}: {item.reason or 'failed'}" for item in failed)
    rollout_transition(
        rollout_id=rollout.pk,
        to=RolloutStatus.STOPPED,
        reason=f"Batch {rollout.current_batch} had {len(failed)} failed store(s), over the threshold of "
        f"{rollout.max_failures}; they are being rolled back to their previous version. {words}",
    )
    for item in failed:
        previous = item.previous_version
        if _reprovision(
            item,
            version=previous,
            from_status=StoreStatus.FAILED,
            reason=f"Rolling back to {previous or 'the previous version'} after a failed upgrade to {rollout.target}.",
        ):
            RolloutItem.objects.filter(pk=item.pk).update(status=RolloutItemStatus.ROLLING_BACK)


def rollout_advance(*, rollout_id: int, now: datetime | None = None) -> AdvanceResult:
    """One step of a rollout: settle the batch in flight, then stop, wait, start the next batch or
    finish. Safe to run twice or concurrently with itself (every move is a conditional UPDATE)."""
    now = now or timezone.now()
    rollout = Rollout.objects.select_related("target").get(pk=rollout_id)
    _settle_items(rollout, now)
    rollout.refresh_from_db()
    batch = rollout.items.filter(batch=rollout.current_batch)
    if rollout.status != RolloutStatus.RUNNING or batch.filter(status__in=ACTIVE_ITEM_STATUSES).exists():
        return AdvanceResult(rollout.status, rollout.current_batch)
    failed = list(batch.filter(status=RolloutItemStatus.FAILED).select_related("store", "previous_version"))
    if rollout.current_batch and len(failed) > rollout.max_failures:
        _stop(rollout, failed)
        return AdvanceResult(RolloutStatus.STOPPED, rollout.current_batch)
    if rollout.current_batch and rollout.next_batch_at is None:
        # The batch just finished within the threshold: the pause before the next one starts now.
        Rollout.objects.filter(pk=rollout.pk).update(
            next_batch_at=now + timedelta(seconds=rollout.pause_seconds)
        )
        return AdvanceResult(rollout.status, rollout.current_batch)
    if rollout.next_batch_at is not None and now < rollout.next_batch_at:
        return AdvanceResult(rollout.status, rollout.current_batch)
    pending = rollout.items.filter(status=RolloutItemStatus.PENDING)
    next_batch = pending.order_by("batch").values_list("batch", flat=True).first()
    if next_batch is None:
        rollout_transition(
            rollout_id=rollout.pk,
            to=RolloutStatus.SUCCEEDED,
            reason=f"Every selected store is on {rollout.target}.",
        )
        return AdvanceResult(RolloutStatus.SUCCEEDED, rollout.current_batch)
    moved = Rollout.objects.filter(
        Q(next_batch_at__isnull=True) | Q(next_batch_at__lte=now),
        pk=rollout.pk,
        current_batch=rollout.current_batch,
    ).update(current_batch=next_batch, next_batch_at=None)
    if not moved:  # another step started this batch
        return AdvanceResult(rollout.status, rollout.current_batch)
    started = 0
    back_up_first = _backups_configured()
    for item in pending.filter(batch=next_batch).select_related("store"):
        if item.store.status != StoreStatus.READY:
            RolloutItem.objects.filter(pk=item.pk).update(
                status=RolloutItemStatus.SKIPPED, reason="The store was not ready when its batch started."
            )
            continue
        started += _back_up_first(item, now) if back_up_first else _upgrade(item, rollout, now)
    return AdvanceResult(RolloutStatus.RUNNING, next_batch, started)


def rollouts_advance_all(*, now: datetime | None = None) -> int:
    """The periodic step over every rollout still moving (running, or rolling stores back)."""
    ids = (
        Rollout.objects.filter(Q(status=RolloutStatus.RUNNING) | Q(items__status__in=ACTIVE_ITEM_STATUSES))
        .values_list("pk", flat=True)
        .distinct()
    )
    for rollout_id in ids:
        rollout_advance(rollout_id=rollout_id, now=now)
    return len(ids)
