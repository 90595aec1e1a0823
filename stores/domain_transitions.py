"""The single writer of `StoreDomain.status`, and the domain's event log (like stores/transitions.py).

Its own module so the store's lifecycle (teardown frees a store's domains) and the domain services can
both use it without importing each other.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.utils import timezone

from stores.choices import DOMAIN_ALLOWED_TRANSITIONS, DomainStatus
from stores.models import StoreDomain, StoreDomainEvent
from stores.webhooks import webhooks_domain_status_changed


def _allowed_sources(target: str) -> set[str]:
    return {source for source, targets in DOMAIN_ALLOWED_TRANSITIONS.items() if target in targets}


def domain_transition(
    *,
    domain_id: int,
    to: DomainStatus,
    reason: str = "",
    actor: Any = None,
    actor_label: str = "",
    only_from: Iterable[DomainStatus] | None = None,
    fields: dict[str, Any] | None = None,
) -> bool:
    """Move a domain to `to` if its status allows it, with `fields` set in the same UPDATE, and write
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
    if to == DomainStatus.REMOVED:
        # A removed domain leaves the Ingress, so it can no longer be the shop's address; clearing it
        # here also frees the store's one primary slot for a domain added later under the same name.
        values["is_primary"] = False
    with transaction.atomic():
        old_status = (
            StoreDomain.objects.select_for_update()
            .filter(pk=domain_id, status__in=sources)
            .values_list("status", flat=True)
            .first()
        )
        if old_status is None:
            return False
        if StoreDomain.objects.filter(pk=domain_id, status=old_status).update(**values) == 0:
            return False
        StoreDomainEvent.objects.create(
            domain_id=domain_id,
            old_status=old_status,
            new_status=to,
            reason=reason,
            actor=actor if getattr(actor, "pk", None) else None,
            actor_label=actor_label,
        )
        # Inside the transaction, like the store's writer: the message exists if and only if the move does.
        webhooks_domain_status_changed(domain_id=domain_id, status=to)
    return True


def domains_release_for_store(*, store_id: int, reason: str) -> int:
    """Free every domain of a store being torn down (its route and certificate go with its namespace)."""
    freed = 0
    for domain_id in (
        StoreDomain.objects.filter(store_id=store_id)
        .exclude(status=DomainStatus.REMOVED)
        .values_list("pk", flat=True)
    ):
        freed += domain_transition(
            domain_id=domain_id, to=DomainStatus.REMOVED, reason=reason, actor_label="teardown"
        )
    return freed
