"""Reads for tenants and stores; every query a page or the API makes about tenancy lives here."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from stores.choices import STORE_TERMINAL_STATUSES, StoreStatus
from stores.models import Store, StoreEvent, Tenant, WebhookDelivery, WebhookEndpoint


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
