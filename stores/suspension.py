"""Suspend and resume a store (issue 20): its workloads scaled to zero through its helm values, its
volumes kept, its hosts answered by the platform's paused page; resumed, it is ready again.

Both are the store's ordinary install run (a PROVISION run through the same claim, helm upgrade,
recording, retry and reaper) with other values: `stores.release` renders `suspended: true` while
`Store.suspension_source` is set, and the lifecycle lands the run on SUSPENDED or READY by the status
the claim found (SUSPENDING or RESUMING). So a retry or a re-provision of a store that is to stay
suspended comes back suspended, never up.

Who suspended decides who resumes: the organisation's own suspension (an owner on the page or
through the partner API) its owners may lift; staff's only staff; billing's (the tenant's `unpaid`
flag) only clearing that flag, through `tenants_enforce_payment`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone

from platform_site.errors import ApplicationError
from provisioning.choices import RunKind
from provisioning.services import provisioning_run_active_exists, provisioning_run_create
from stores.choices import STORE_RUNNING_STATUSES, StoreStatus, SuspensionSource
from stores.exceptions import InvalidStoreState
from stores.models import Store, Tenant
from stores.transitions import store_transition


class ResumeNotAllowed(ApplicationError):
    """The caller may not lift this suspension (staff or billing suspended the store)."""

    code = "resume_not_allowed"
    http_status = 403


# Who a source's suspension may be lifted by; billing's only by the payment rule itself.
_RESUMERS: dict[str, frozenset[str]] = {
    SuspensionSource.TENANT: frozenset({SuspensionSource.TENANT, SuspensionSource.STAFF}),
    SuspensionSource.STAFF: frozenset({SuspensionSource.STAFF}),
    SuspensionSource.BILLING: frozenset({SuspensionSource.BILLING}),
}
_REFUSALS: dict[str, str] = {
    SuspensionSource.STAFF: "Platform staff paused this store; contact support to resume it.",
    SuspensionSource.BILLING: "This store is paused because the account is unpaid; it resumes by itself "
    "once the payment is settled.",
}


def store_can_resume(*, store: Store, source: SuspensionSource) -> str:
    """Why `source` may not resume `store` ("" when it may)."""
    if store.status != StoreStatus.SUSPENDED:
        return f"Only a suspended store can be resumed; this one is {store.status}."
    if source not in _RESUMERS.get(store.suspension_source, frozenset()):
        return _REFUSALS.get(store.suspension_source, "This suspension cannot be lifted from here.")
    return ""


def store_suspend(*, store: Store, source: SuspensionSource, reason: str = "", actor: Any = None) -> Store:
    """Suspend a running store: record who and why, move it to suspending and queue the install that
    scales it to zero. Asking again while it is suspending or suspended is harmless (the first reason
    stands)."""
    reason = reason.strip() or f"Suspended by {SuspensionSource(source).label.lower()}."
    with transaction.atomic():
        locked = Store.objects.select_for_update().get(pk=store.pk)
        if locked.status in {StoreStatus.SUSPENDING, StoreStatus.SUSPENDED}:
            return locked
        if locked.status not in STORE_RUNNING_STATUSES:
            raise InvalidStoreState(
                f"Only a ready or degraded store can be suspended; this one is {locked.status}."
            )
        # A running store with an install in flight is REQUESTED/PROVISIONING, so none should exist;
        # checked anyway because two installs of one release would race each other.
        if provisioning_run_active_exists(store_id=locked.pk, kind=RunKind.PROVISION):
            raise InvalidStoreState("The store's release is being changed; try again in a moment.")
        if not store_transition(
            store_id=locked.pk, to=StoreStatus.SUSPENDING, reason=reason, actor=actor, actor_label=source
        ):
            raise InvalidStoreState(f"The store cannot be suspended while it is {locked.status}.")
        Store.objects.filter(pk=locked.pk).update(
            suspension_source=source,
            suspension_reason=reason,
            suspended_by=actor if getattr(actor, "pk", None) else None,
            suspended_at=timezone.now(),
        )
        provisioning_run_create(
            store_id=locked.pk, kind=RunKind.PROVISION, cluster_id=locked.cluster_id, requested_by=actor
        )
    locked.refresh_from_db()
    return locked


def store_resume(*, store: Store, source: SuspensionSource, actor: Any = None) -> Store:
    """Resume a suspended store if `source` may lift its suspension: clear it, move the store to
    resuming and queue the install that brings its workloads back (it lands on ready)."""
    with transaction.atomic():
        locked = Store.objects.select_for_update().get(pk=store.pk)
        if locked.status == StoreStatus.RESUMING:
            return locked
        refusal = store_can_resume(store=locked, source=source)
        if refusal and locked.status != StoreStatus.SUSPENDED:
            raise InvalidStoreState(refusal)
        if refusal:
            raise ResumeNotAllowed(refusal)
        reason = f"Resumed by {SuspensionSource(source).label.lower()}."
        if not store_transition(
            store_id=locked.pk,
            to=StoreStatus.RESUMING,
            reason=reason,
            actor=actor,
            actor_label=source,
            only_from=[StoreStatus.SUSPENDED],
        ):
            raise InvalidStoreState(f"The store cannot be resumed while it is {locked.status}.")
        Store.objects.filter(pk=locked.pk).update(
            suspension_source="", suspension_reason="", suspended_by=None, suspended_at=None
        )
        provisioning_run_create(
            store_id=locked.pk, kind=RunKind.PROVISION, cluster_id=locked.cluster_id, requested_by=actor
        )
    locked.refresh_from_db()
    return locked


@dataclass
class PaymentReport:
    """What one pass of the payment rule did, by store name; `refused` says why a store was left."""

    suspended: list[str] = field(default_factory=list)
    resumed: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)


def tenants_enforce_payment() -> PaymentReport:
    """The plan rule (Celery beat): an unpaid tenant's running stores are suspended by billing, and a
    tenant no longer unpaid gets back the stores billing suspended. Stores busy with something else
    (provisioning, a staff suspension) are left and named; the next pass tries again."""
    report = PaymentReport()
    unpaid = Store.objects.filter(tenant__unpaid=True, status__in=STORE_RUNNING_STATUSES)
    for store in unpaid.order_by("pk"):
        try:
            store_suspend(
                store=store,
                source=SuspensionSource.BILLING,
                reason="The account is unpaid: the store is paused until the payment is settled.",
            )
            report.suspended.append(store.name)
        except ApplicationError as exc:
            report.refused[store.name] = exc.message
    paid = Store.objects.filter(
        tenant__unpaid=False, status=StoreStatus.SUSPENDED, suspension_source=SuspensionSource.BILLING
    )
    for store in paid.order_by("pk"):
        try:
            store_resume(store=store, source=SuspensionSource.BILLING)
            report.resumed.append(store.name)
        except ApplicationError as exc:
            report.refused[store.name] = exc.message
    return report


def tenant_set_unpaid(*, tenant: Tenant, unpaid: bool) -> PaymentReport:
    """Billing's switch: set or clear the tenant's unpaid flag and apply the rule at once."""
    Tenant.objects.filter(pk=tenant.pk).update(unpaid=unpaid)
    return tenants_enforce_payment()
