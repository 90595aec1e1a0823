"""Reads for tenants and stores; every query a page or the API makes about tenancy lives here."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from stores.choices import DOMAIN_ROUTED_STATUSES, STORE_TERMINAL_STATUSES, DomainStatus, StoreStatus
from stores.models import (
    Store,
    StoreBackup,
    StoreDomain,
    StoreEvent,
    Tenant,
    WebhookDelivery,
    WebhookEndpoint,
)


def tenant_for_user(*, user: Any) -> Tenant | None:
    """The tenant a signed-in user acts for (the first one they joined)."""
    if not getattr(user, "is_authenticated", False):
        return None
    membership = user.memberships.select_related("tenant__plan").order_by("created_at", "id").first()
    return membership.tenant if membership else None


def tenant_live_store_count(*, tenant: Tenant) -> int:
    """Stores that count against the plan: every store not yet deleted."""
    return Store.objects.filter(tenant=tenant).exclude(status__in=STORE_TERMINAL_STATUSES).count()


def store_list_for_tenant(*, tenant: Tenant, include_deleted: bool = False) -> QuerySet[Store]:
    """The tenant's stores, newest first."""
    stores = Store.objects.filter(tenant=tenant)
    if not include_deleted:
        stores = stores.exclude(status__in=STORE_TERMINAL_STATUSES)
    return stores.order_by("-created_at", "-id")


def store_get_for_tenant(*, tenant: Tenant, name: str) -> Store | None:
    """The tenant's live store with this name, else its most recently deleted one (so a merchant can
    still see how a teardown ended); None for any other tenant's store."""
    stores = Store.objects.filter(tenant=tenant, name=name).select_related("tenant__plan", "cluster")
    live = stores.exclude(status=StoreStatus.DELETED).first()
    return live or stores.order_by("-deleted_at", "-id").first()


def store_events(*, store: Store) -> QuerySet[StoreEvent]:
    """The store's history, oldest first."""
    return StoreEvent.objects.filter(store=store).select_related("actor").order_by("created_at", "id")


def store_routed_domains(*, store: Store) -> list[str]:
    """The domains the store's release routes: those whose ownership is proven."""
    return list(
        StoreDomain.objects.filter(store=store, status__in=DOMAIN_ROUTED_STATUSES)
        .order_by("created_at", "id")
        .values_list("domain", flat=True)
    )


def store_primary_domain(*, store: Store) -> str:
    """The host the shop calls itself by, when not its platform host: the primary domain while it is
    active (has a certificate), else "" so a failed primary falls back to the platform host."""
    return (
        StoreDomain.objects.filter(store=store, is_primary=True, status=DomainStatus.ACTIVE)
        .values_list("domain", flat=True)
        .first()
        or ""
    )


def store_domains(*, store: Store) -> QuerySet[StoreDomain]:
    """The store's domains that are not removed, oldest first."""
    return (
        StoreDomain.objects.filter(store=store)
        .exclude(status=DomainStatus.REMOVED)
        .order_by("created_at", "id")
    )


def store_domain_get(*, store: Store, domain: str) -> StoreDomain | None:
    """The store's live domain of that name (as typed or in any case), else None."""
    return store_domains(store=store).filter(domain=domain.strip().rstrip(".").lower()).first()


def store_domain_by_id(*, store: Store, domain_id: int) -> StoreDomain | None:
    """The store's live domain with that id, else None (another store's id finds nothing)."""
    return store_domains(store=store).filter(pk=domain_id).first()


def webhook_endpoints_for_tenant(*, tenant: Tenant) -> QuerySet[WebhookEndpoint]:
    """A tenant's webhook endpoints, oldest first."""
    return WebhookEndpoint.objects.filter(tenant=tenant).order_by("created_at", "id")


def webhook_deliveries_for_endpoint(*, endpoint: WebhookEndpoint) -> QuerySet[WebhookDelivery]:
    """An endpoint's delivery log, newest first, with each delivery's attempts."""
    return (
        WebhookDelivery.objects.filter(endpoint=endpoint)
        .select_related("message")
        .prefetch_related("attempt_log")
        .order_by("-created_at", "-id")
    )


def store_paused_for_host(*, host: str) -> Store | None:
    """The store whose own host or routed custom domain is `host`, if it is paused (or being paused or
    resumed: the Ingress may point at the paused page then), else None."""
    paused = [StoreStatus.SUSPENDING, StoreStatus.SUSPENDED, StoreStatus.RESUMING]
    store = Store.objects.filter(host=host, status__in=paused).first()
    if store is not None:
        return store
    domain = (
        StoreDomain.objects.filter(domain=host, status__in=DOMAIN_ROUTED_STATUSES, store__status__in=paused)
        .select_related("store")
        .first()
    )
    return domain.store if domain is not None else None


def backups_for_store(*, store: Store) -> QuerySet[StoreBackup]:
    """The store's backups, newest first (expired ones too: the history says what was removed)."""
    return StoreBackup.objects.filter(store=store).select_related("store").order_by("-created_at", "-id")


def backups_for_tenant(*, tenant: Tenant) -> QuerySet[StoreBackup]:
    """Every backup of the tenant's stores, deleted stores' final backups included, newest first."""
    return StoreBackup.objects.filter(tenant=tenant).select_related("store").order_by("-created_at", "-id")


def backup_get_for_tenant(*, tenant: Tenant, backup_id: int) -> StoreBackup | None:
    """The tenant's backup with this id; None for another tenant's (an interface answers 404)."""
    return backups_for_tenant(tenant=tenant).filter(pk=backup_id).first()
