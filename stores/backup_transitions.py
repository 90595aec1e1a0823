"""The single writer of `StoreBackup.status`, and the backup's event log (like stores/transitions.py).

Its own module so the store's lifecycle (a deleted store's final backup) and the backup services can
both use it without importing each other.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.utils import timezone

from stores.choices import BACKUP_ALLOWED_TRANSITIONS, BackupStatus
from stores.models import StoreBackup, StoreBackupEvent
from stores.webhooks import webhooks_backup_status_changed


def _allowed_sources(target: str) -> set[str]:
    return {source for source, targets in BACKUP_ALLOWED_TRANSITIONS.items() if target in targets}


def backup_transition(
    *,
    backup_id: int,
    to: BackupStatus,
    reason: str = "",
    actor: Any = None,
    actor_label: str = "",
    only_from: Iterable[BackupStatus] | None = None,
    fields: dict[str, Any] | None = None,
) -> bool:
    """Move a backup to `to` if its status allows it, with `fields` set in the same UPDATE, and write
    the event row. Returns True if it moved; False when the move is invalid or a concurrent writer won."""
    sources = _allowed_sources(to)
    if only_from is not None:
        sources &= {str(status) for status in only_from}
    if not sources:
        return False
    values: dict[str, Any] = {
        **(fields or {}),
        "status": to,
        "status_reason": reason,
        "status_changed_at": timezone.now(),
    }
    with transaction.atomic():
        old_status = (
            StoreBackup.objects.select_for_update()
            .filter(pk=backup_id, status__in=sources)
            .values_list("status", flat=True)
            .first()
        )
        if old_status is None:
            return False
        if StoreBackup.objects.filter(pk=backup_id, status=old_status).update(**values) == 0:
            return False
        StoreBackupEvent.objects.create(
            backup_id=backup_id,
            old_status=old_status,
            new_status=to,
            reason=reason,
            actor=actor if getattr(actor, "pk", None) else None,
            actor_label=actor_label,
        )
        # Inside the transaction, like the store's writer: the message exists if and only if the move does.
        webhooks_backup_status_changed(backup_id=backup_id, status=to)
    return True


def backup_record_event(*, backup_id: int, reason: str, actor: Any = None, actor_label: str = "") -> None:
    """A step that is not a status change (a restore from this backup, a drill started)."""
    StoreBackupEvent.objects.create(
        backup_id=backup_id,
        reason=reason,
        actor=actor if getattr(actor, "pk", None) else None,
        actor_label=actor_label,
    )
