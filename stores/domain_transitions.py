"""The single writer of `StoreDomain.status`, and the domain's event log (like stores/transitions.py).

Its own module so the store's lifecycle (teardown frees a store's domains) and the domain services can
both use it without importing each other.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from stores.choices import DOMAIN_ALLOWED_TRANSITIONS, DomainStatus
from stores.models import StoreDomain, StoreDomainEvent
from stores.status_writes import status_move
from stores.webhooks import webhooks_domain_status_changed


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
    values = dict(fields or {})
    if to == DomainStatus.REMOVED:
        # A removed domain leaves the Ingress, so it can no longer be the shop's address; clearing it
        # here also frees the store's one primary slot for a domain added later under the same name.
        values["is_primary"] = False
    return status_move(
        model=StoreDomain,
        event_model=StoreDomainEvent,
        owner_field="domain_id",
        allowed=DOMAIN_ALLOWED_TRANSITIONS,
        pk=domain_id,
        to=to,
        reason=reason,
        actor=actor,
        actor_label=actor_label,
        only_from=only_from,
        fields=values,
        announce=lambda: webhooks_domain_status_changed(domain_id=domain_id, status=to),
    )


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
