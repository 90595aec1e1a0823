"""The mechanics every single-writer status of this app shares (a domain's, a backup's): a move is
one conditional UPDATE under a row lock plus its event row, in one transaction, or nothing at all.

Each writer keeps its own module (its allowed map, its extra fields, what it announces); this is the
part that must behave the same in all of them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from django.db import models, transaction
from django.utils import timezone


def status_move(
    *,
    model: type[models.Model],
    event_model: type[models.Model],
    owner_field: str,
    allowed: Mapping[str, frozenset[str]],
    pk: int,
    to: str,
    reason: str = "",
    actor: Any = None,
    actor_label: str = "",
    only_from: Iterable[str] | None = None,
    fields: Mapping[str, Any] | None = None,
    announce: Callable[[], object] | None = None,
) -> bool:
    """Move row `pk` of `model` to `to` if `allowed` permits it from its current status (narrowed by
    `only_from`), with `fields` set in the same UPDATE; write an `event_model` row whose `owner_field`
    points at it; call `announce` inside the transaction so a message exists exactly when the move
    does. True if it moved; False when the move is invalid or a concurrent writer won."""
    sources = {source for source, targets in allowed.items() if to in targets}
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
            model._default_manager.select_for_update()
            .filter(pk=pk, status__in=sources)
            .values_list("status", flat=True)
            .first()
        )
        if old_status is None:
            return False
        if model._default_manager.filter(pk=pk, status=old_status).update(**values) == 0:
            return False
        event_model._default_manager.create(
            **{owner_field: pk},
            old_status=old_status,
            new_status=to,
            reason=reason,
            actor=actor if getattr(actor, "pk", None) else None,
            actor_label=actor_label,
        )
        if announce is not None:
            announce()
    return True
