"""Staff pause and resume stores from the admin, and mark tenants unpaid or paid; every refusal is
reported by store name."""

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from provisioning.choices import RunStatus
from provisioning.models import ProvisioningRun
from stores.choices import StoreStatus, SuspensionSource
from stores.models import Store, StoreEvent
from stores.suspension import store_suspend
from stores.tests.factories import StoreFactory, UserFactory
from stores.transitions import store_transition

pytestmark = pytest.mark.django_db

STORES = "admin:stores_store_changelist"


@pytest.fixture
def staff_client(client):
    staff = UserFactory(username="staff@example.com", is_staff=True, is_superuser=True)
    client.force_login(staff)
    client.staff = staff
    return client


def _paused(tenant, source):
    store = StoreFactory(ready=True, tenant=tenant)
    store_suspend(store=store, source=source, reason="paused for the test")
    ProvisioningRun.objects.filter(store=store, status=RunStatus.QUEUED).update(status=RunStatus.SUCCEEDED)
    assert store_transition(store_id=store.pk, to=StoreStatus.SUSPENDED, reason="scaled to zero")
    return store


def test_suspend_asks_for_a_reason_then_pauses_with_it(staff_client, tenant):
    store = StoreFactory(ready=True, tenant=tenant)
    url = reverse(STORES)

    confirm = staff_client.post(url, {"action": "suspend", ACTION_CHECKBOX_NAME: [store.pk]})
    assert b"Pause them" in confirm.content
    assert Store.objects.get(pk=store.pk).status == StoreStatus.READY
    # Confirmed without a reason: asked again, nothing moves.
    again = staff_client.post(
        url, {"action": "suspend", ACTION_CHECKBOX_NAME: [store.pk], "confirmed": "yes"}
    )
    assert b"Pause them" in again.content
    assert Store.objects.get(pk=store.pk).status == StoreStatus.READY

    done = staff_client.post(
        url,
        {
            "action": "suspend",
            ACTION_CHECKBOX_NAME: [store.pk],
            "confirmed": "yes",
            "reason": "Phishing report",
        },
        follow=True,
    )

    assert b"Pause queued for 1 store" in done.content
    store.refresh_from_db()
    assert store.status == StoreStatus.SUSPENDING
    assert (store.suspension_source, store.suspension_reason) == (SuspensionSource.STAFF, "Phishing report")
    event = StoreEvent.objects.filter(store=store).order_by("-id").first()
    assert event.actor == staff_client.staff and event.reason == "Phishing report"


def test_suspend_of_a_deleted_store_is_refused_by_name(staff_client, tenant):
    store = StoreFactory(deleted=True, tenant=tenant)

    done = staff_client.post(
        reverse(STORES),
        {"action": "suspend", ACTION_CHECKBOX_NAME: [store.pk], "confirmed": "yes", "reason": "x"},
        follow=True,
    )

    assert f"Store {store.name}: Only a ready or degraded store can be suspended".encode() in done.content
    assert Store.objects.get(pk=store.pk).status == StoreStatus.DELETED


def test_staff_resume_lifts_a_staff_pause_and_refuses_a_running_store(staff_client, tenant):
    paused = _paused(tenant, SuspensionSource.STAFF)
    running = StoreFactory(ready=True, tenant=tenant)

    done = staff_client.post(
        reverse(STORES), {"action": "resume", ACTION_CHECKBOX_NAME: [paused.pk, running.pk]}, follow=True
    )

    assert b"Resume queued for 1 store" in done.content
    assert f"Store {running.name}: Only a suspended store can be resumed".encode() in done.content
    assert Store.objects.get(pk=paused.pk).status == StoreStatus.RESUMING


def test_staff_cannot_lift_a_billing_pause(staff_client, tenant):
    tenant.unpaid = True
    tenant.save()
    paused = _paused(tenant, SuspensionSource.BILLING)

    done = staff_client.post(
        reverse(STORES), {"action": "resume", ACTION_CHECKBOX_NAME: [paused.pk]}, follow=True
    )

    assert b"unpaid" in done.content
    assert Store.objects.get(pk=paused.pk).status == StoreStatus.SUSPENDED


def test_view_only_staff_cannot_pause(client, tenant):
    from django.contrib.auth.models import Permission

    viewer = UserFactory(username="viewer@example.com", is_staff=True)
    viewer.user_permissions.set(Permission.objects.filter(codename="view_store"))
    client.force_login(viewer)
    store = StoreFactory(ready=True, tenant=tenant)

    client.post(
        reverse(STORES),
        {"action": "suspend", ACTION_CHECKBOX_NAME: [store.pk], "confirmed": "yes", "reason": "x"},
    )

    assert Store.objects.get(pk=store.pk).status == StoreStatus.READY


def test_mark_unpaid_then_paid_pauses_and_resumes_the_tenants_stores(staff_client, tenant):
    store = StoreFactory(ready=True, tenant=tenant)
    url = reverse("admin:stores_tenant_changelist")

    done = staff_client.post(url, {"action": "mark_unpaid", ACTION_CHECKBOX_NAME: [tenant.pk]}, follow=True)

    assert b"paused 1 store" in done.content
    store.refresh_from_db()
    assert store.status == StoreStatus.SUSPENDING and store.suspension_source == SuspensionSource.BILLING
    ProvisioningRun.objects.filter(store=store, status=RunStatus.QUEUED).update(status=RunStatus.SUCCEEDED)
    assert store_transition(store_id=store.pk, to=StoreStatus.SUSPENDED, reason="scaled to zero")

    done = staff_client.post(url, {"action": "mark_paid", ACTION_CHECKBOX_NAME: [tenant.pk]}, follow=True)

    assert b"resuming 1 store" in done.content
    assert Store.objects.get(pk=store.pk).status == StoreStatus.RESUMING
