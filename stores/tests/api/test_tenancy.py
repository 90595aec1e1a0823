"""Every API route, walked as another tenant: a store of tenant B is 404 or 405 to tenant A on every
method, and tenant-level routes never show it. New routes are picked up from the URL resolver."""

from __future__ import annotations

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from provisioning.models import ProvisioningRun
from stores.choices import DomainStatus, StoreEventKind, StoreStatus
from stores.models import Store, StoreDomain, StoreEvent
from stores.tests.factories import StoreFactory

pytestmark = pytest.mark.django_db

METHODS = ["get", "head", "post", "put", "patch", "delete", "options", "trace"]


def _api_routes() -> list[URLPattern]:
    """The URL patterns mounted under the `api` namespace."""
    for entry in get_resolver().url_patterns:
        if isinstance(entry, URLResolver) and entry.namespace == "api":
            return [p for p in entry.url_patterns if isinstance(p, URLPattern)]
    raise AssertionError("the API is not mounted under the `api` namespace")


def test_the_walk_covers_every_route():
    names = {route.name for route in _api_routes()}
    assert names == {
        "plan",
        "store-list",
        "store-detail",
        "store-retry",
        "store-suspend",
        "store-resume",
        "store-events",
        "store-credentials",
        "store-domains",
        "store-domain-check",
        "store-domain-remove",
        "store-domain-primary",
        "store-activity",
        "store-backups",
        # Backups are addressed by id: the walk below takes another tenant's backup to each of them.
        *("backup-list", "backup-detail", "backup-restore", "backup-restore-into-new-store"),
        # Webhook endpoints are addressed by id; stores/tests/api/test_webhooks.py walks another
        # tenant's endpoint on each of them.
        *("webhook-list", "webhook-detail", "webhook-rotate-secret", "webhook-enable"),
        *("webhook-deliveries", "webhook-resend"),
    }


@pytest.mark.parametrize("method", METHODS)
def test_another_tenants_store_is_404_or_405_on_every_route(api, other_tenant, method):
    theirs = StoreFactory(tenant=other_tenant, name="their-store", status=StoreStatus.FAILED)
    their_domain = StoreDomain.objects.create(store=theirs, domain="shop.their-store.example", token="t" * 32)
    events_before = StoreEvent.objects.filter(store=theirs).count()

    for route in _api_routes():
        groups = route.pattern.regex.groupindex
        if "name" not in groups:
            continue
        kwargs = {"name": theirs.name} | ({"domain": their_domain.domain} if "domain" in groups else {})
        url = reverse(f"api:{route.name}", kwargs=kwargs)
        response = getattr(api, method)(url, {"name": "x", "engine": "woocommerce"}, format="json")
        assert response.status_code in {404, 405}, (method, url, response.status_code)
        assert theirs.name not in response.content.decode()

    theirs.refresh_from_db()
    assert theirs.status == StoreStatus.FAILED
    assert ProvisioningRun.objects.filter(store=theirs).count() == 1
    assert StoreEvent.objects.filter(store=theirs).count() == events_before
    assert not StoreEvent.objects.filter(kind=StoreEventKind.AUDIT).exists()
    their_domain.refresh_from_db()
    assert their_domain.status == DomainStatus.PENDING_VERIFICATION
    assert not their_domain.events.exists()


def test_tenant_level_routes_never_show_another_tenants_store(api, other_tenant):
    StoreFactory(tenant=other_tenant, name="their-store")
    for route in _api_routes():
        if route.pattern.regex.groupindex:  # per-object routes are walked by the test above
            continue
        response = api.get(reverse(f"api:{route.name}"))
        assert response.status_code == 200
        assert "their-store" not in response.content.decode()
    assert api.get(reverse("api:store-list"), {"status": "requested"}).json()["count"] == 0
    assert Store.objects.filter(name="their-store").count() == 1


@pytest.mark.parametrize("method", METHODS)
def test_another_tenants_backup_is_404_or_405_on_every_backup_route(api, other_tenant, method):
    from stores.models import StoreBackup

    theirs = StoreFactory(tenant=other_tenant, name="their-store", ready=True)
    backup = StoreBackup.objects.create(
        store=theirs, tenant=other_tenant, engine=theirs.engine, kind="manual", object_key="their-backup"
    )
    for route in _api_routes():
        if "pk" not in route.pattern.regex.groupindex or not route.name.startswith("backup-"):
            continue
        url = reverse(f"api:{route.name}", kwargs={"pk": backup.pk})
        response = getattr(api, method)(url, {"confirm_name": theirs.name}, format="json")
        assert response.status_code in {404, 405}, (method, url, response.status_code)
        assert theirs.name not in response.content.decode()
    backup.refresh_from_db()
    assert backup.status == "requested" and not backup.events.exists()
    assert list(Store.objects.values_list("name", flat=True)) == ["their-store"]
    assert Store.objects.get(pk=theirs.pk).status == StoreStatus.READY
