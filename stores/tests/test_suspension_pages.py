"""The merchant's store page while paused (who paused it and why, resume only when the organisation
paused it), its pause and resume forms with every refusal, and the paused page visitors see."""

from __future__ import annotations

import re

import pytest
from django.core.cache import cache

from provisioning.choices import RunStatus
from provisioning.models import ProvisioningRun
from stores.choices import DomainStatus, MembershipRole, StoreStatus, SuspensionSource
from stores.models import Store, StoreDomain
from stores.suspension import store_suspend
from stores.tests.factories import MembershipFactory, StoreFactory
from stores.transitions import store_transition

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _pages_settings(settings):
    settings.CLUSTER_IS_SIMULATED = True
    cache.clear()


@pytest.fixture
def merchant(client, owner):
    client.force_login(owner)
    return client


def _text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


def _paused(tenant, source, **kwargs):
    store = StoreFactory(ready=True, tenant=tenant, **kwargs)
    store_suspend(store=store, source=source, reason="Chargeback on invoice 7")
    ProvisioningRun.objects.filter(store=store, status=RunStatus.QUEUED).update(status=RunStatus.SUCCEEDED)
    assert store_transition(store_id=store.pk, to=StoreStatus.SUSPENDED, reason="scaled to zero")
    return store


# ---- the store page ------------------------------------------------------------------------------------


def test_a_paused_store_page_says_who_and_why_and_offers_resume_for_its_own_pause(merchant, tenant):
    store = _paused(tenant, SuspensionSource.TENANT)

    page = _text(merchant.get(f"/stores/{store.name}/"))

    assert "Suspended" in page
    assert "Paused by the organisation:</strong> Chargeback on invoice 7" in page
    assert f'action="/stores/{store.name}/resume/"' in page


@pytest.mark.parametrize(
    ("source", "words"),
    [(SuspensionSource.STAFF, "contact support"), (SuspensionSource.BILLING, "account is unpaid")],
)
def test_a_staff_or_billing_pause_shows_why_the_merchant_cannot_resume(merchant, tenant, source, words):
    store = _paused(tenant, source)

    page = _text(merchant.get(f"/stores/{store.name}/"))

    assert words in page
    assert f'action="/stores/{store.name}/resume/"' not in page


def test_pause_from_the_page_moves_the_store_with_the_reason(merchant, tenant):
    store = StoreFactory(ready=True, tenant=tenant)
    assert f'action="/stores/{store.name}/suspend/"' in _text(merchant.get(f"/stores/{store.name}/"))

    response = merchant.post(f"/stores/{store.name}/suspend/", {"reason": "Stocktaking"}, follow=True)

    store.refresh_from_db()
    assert store.status == StoreStatus.SUSPENDING
    assert (store.suspension_source, store.suspension_reason) == (SuspensionSource.TENANT, "Stocktaking")
    assert "Pausing your store" in _text(response)


def test_resume_from_the_page(merchant, tenant):
    store = _paused(tenant, SuspensionSource.TENANT)

    response = merchant.post(f"/stores/{store.name}/resume/", follow=True)

    assert Store.objects.get(pk=store.pk).status == StoreStatus.RESUMING
    assert "Resuming your store" in _text(response)


def test_resume_of_a_staff_pause_from_the_page_is_refused_with_the_reason(merchant, tenant):
    store = _paused(tenant, SuspensionSource.STAFF)

    response = merchant.post(f"/stores/{store.name}/resume/", follow=True)

    assert "contact support" in _text(response)
    assert Store.objects.get(pk=store.pk).status == StoreStatus.SUSPENDED


def test_pause_of_a_deleted_store_from_the_page_is_refused(merchant, tenant):
    store = StoreFactory(deleted=True, tenant=tenant)

    response = merchant.post(f"/stores/{store.name}/suspend/", follow=True)

    assert "Only a ready or degraded store can be suspended; this one is deleted." in _text(response)


def test_resume_of_a_running_store_from_the_page_is_refused(merchant, tenant):
    store = StoreFactory(ready=True, tenant=tenant)

    response = merchant.post(f"/stores/{store.name}/resume/", follow=True)

    assert "Only a suspended store can be resumed; this one is ready." in _text(response)


def test_another_tenants_store_is_404(merchant, other_tenant):
    running = StoreFactory(ready=True, tenant=other_tenant)
    paused = _paused(other_tenant, SuspensionSource.TENANT)

    assert merchant.post(f"/stores/{running.name}/suspend/").status_code == 404
    assert merchant.post(f"/stores/{paused.name}/resume/").status_code == 404
    assert Store.objects.get(pk=running.pk).status == StoreStatus.READY


def test_a_member_is_refused_pause_and_resume(client, tenant):
    member = MembershipFactory(tenant=tenant, role=MembershipRole.MEMBER).user
    client.force_login(member)
    running = StoreFactory(ready=True, tenant=tenant)
    paused = _paused(tenant, SuspensionSource.TENANT)

    assert "owners can pause or resume" in _text(client.get(f"/stores/{running.name}/"))
    assert client.post(f"/stores/{running.name}/suspend/").status_code == 403
    assert client.post(f"/stores/{paused.name}/resume/").status_code == 403
    assert Store.objects.get(pk=running.pk).status == StoreStatus.READY
    assert Store.objects.get(pk=paused.pk).status == StoreStatus.SUSPENDED


# ---- the paused page visitors see ---------------------------------------------------------------------


def test_a_paused_stores_host_answers_the_paused_page(client, tenant):
    store = _paused(tenant, SuspensionSource.STAFF, name="corner-shop")

    response = client.get("/any/shop/path?x=1", HTTP_HOST=f"{store.host}:80")

    assert response.status_code == 503
    assert "Corner Shop is paused" in _text(response)
    assert response["Retry-After"] == "3600" and response["Cache-Control"] == "no-store"
    # Never the staff reason to the public.
    assert "Chargeback" not in _text(response)


def test_a_paused_stores_custom_domain_answers_the_paused_page(client, tenant):
    store = _paused(tenant, SuspensionSource.TENANT)
    StoreDomain.objects.create(store=store, domain="shop.example.org", status=DomainStatus.ACTIVE, token="t")

    assert client.get("/", HTTP_HOST="Shop.Example.org").status_code == 503


def test_a_running_stores_host_is_not_answered_by_the_platform(client, tenant):
    store = StoreFactory(ready=True, tenant=tenant)

    response = client.get("/", HTTP_HOST=store.host)

    # As before this feature: a host the platform does not serve is refused.
    assert response.status_code == 400


def test_the_dashboard_is_untouched(client):
    assert client.get("/", HTTP_HOST="testserver").status_code == 200
