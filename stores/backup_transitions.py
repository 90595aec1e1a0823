"""The single writer of `StoreBackup.status`, and the backup's event log (like stores/transitions.py).

Its own module so the store's lifecycle (a deleted store's final backup) and the backup services can
both use it without importing each other.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from stores.choices import BACKUP_ALLOWED_TRANSITIONS, BackupStatus
from stores.models import StoreBackup, StoreBackupEvent
from stores.status_writes import status_move
from stores.webhooks import webhooks_backup_status_changed


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
    return status_move(
        model=StoreBackup,
        event_model=StoreBackupEvent,
        owner_field="backup_id",
        allowed=BACKUP_ALLOWED_TRANSITIONS,
        pk=backup_id,
        to=to,
        reason=reason,
        actor=actor,
        actor_label=actor_label,
        only_from=only_from,
        fields=fields,
        announce=lambda: webhooks_backup_status_changed(backup_id=backup_id, status=to),
    )


def backup_record_event(*, backup_id: int, reason: str, actor: Any = None, actor_label: str = "") -> None:
    """A step that is not a status change (a restore from this backup, a drill started)."""
    StoreBackupEvent.objects.create(
        backup_id=backup_id,
        reason=reason,
        actor=actor if getattr(actor, "pk", None) else None,
        actor_label=actor_label,
    )
