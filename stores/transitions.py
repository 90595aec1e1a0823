"""The single writer of `Store.status`, and the store's event log.

Every status change is a conditional UPDATE guarded by the allowed-transitions map, plus an event row,
in one short transaction. A row count of 0 means the move is invalid or a concurrent writer won.
The same transaction records the webhook message the new status announces (stores.webhooks), so
partners hear of exactly the moves that happened; it is sent after commit.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.utils import timezone

from stores.choices import STORE_ALLOWED_TRANSITIONS, StoreEventKind, StoreStatus
from stores.models import Store, StoreEvent
from stores.webhooks import webhooks_store_created, webhooks_store_status_changed


def _allowed_sources(target: str) -> set[str]:
    return {source for source, targets in STORE_ALLOWED_TRANSITIONS.items() if target in targets}


def store_transition(
    *,
    store_id: int,
    to: StoreStatus,
    reason: str = "",
    actor: Any = None,
    actor_label: str = "",
    only_from: Iterable[StoreStatus] | None = None,
) -> bool:
    """Move a store to `to` if its current status allows it; write the event. Returns True if it moved.

    `only_from` narrows the allowed sources further (a caller that knows which status it expects).
    """
    sources = _allowed_sources(to)
    if only_from is not None:
        sources &= {str(status) for status in only_from}
    if not sources:
        return False
    now = timezone.now()
    fields: dict[str, Any] = {"status": to, "status_reason": reason, "status_changed_at": now}
    if to == StoreStatus.READY:
        fields["ready_at"] = now
    if to == StoreStatus.DELETED:
        fields["deleted_at"] = now
    with transaction.atomic():
        # Read the old status under the same transaction; select_for_update makes the read and the
        # conditional UPDATE one step on PostgreSQL (SQLite serialises writers anyway).
        old_status = (
            Store.objects.select_for_update()
            .filter(pk=store_id, status__in=sources)
            .values_list("status", flat=True)
            .first()
        )
        if old_status is None:
            return False
        updated = Store.objects.filter(pk=store_id, status=old_status).update(**fields)
        if updated == 0:
            return False
        StoreEvent.objects.create(
            store_id=store_id,
            kind=StoreEventKind.TRANSITION,
            old_status=old_status,
            new_status=to,
            reason=reason,
            actor=actor if getattr(actor, "pk", None) else None,
            actor_label=actor_label,
        )
        webhooks_store_status_changed(store_id=store_id, status=to, old_status=old_status)
    return True


def store_record_created(*, store: Store, reason: str, actor: Any = None) -> StoreEvent:
    """The first event of a new store (its initial `requested` status), written in the creating
    transaction; announces `store.requested` like every later move."""
    event = StoreEvent.objects.create(
        store=store,
        kind=StoreEventKind.TRANSITION,
        new_status=store.status,
        reason=reason,
        actor=actor if getattr(actor, "pk", None) else None,
    )
    webhooks_store_created(store=store)
    return event


def store_record_event(
    *,
    store_id: int,
    kind: StoreEventKind,
    step: str = "",
    reason: str = "",
    actor: Any = None,
    actor_label: str = "",
) -> StoreEvent:
    """Append a non-transition event (a provisioning step or an audited action)."""
    return StoreEvent.objects.create(
        store_id=store_id,
        kind=kind,
        step=step,
        reason=reason,
        actor=actor if getattr(actor, "pk", None) else None,
        actor_label=actor_label,
    )
