import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from provisioning.choices import RunKind, RunStatus
from provisioning.models import ProvisioningRun
from stores.choices import DomainStatus, StoreStatus
from stores.domains import domain_add, domain_verification_name
from stores.lifecycle import store_create
from stores.models import Store, StoreDomain, StoreEvent
from stores.tests.factories import StoreFactory, UserFactory
from stores.transitions import store_transition
from testkit.dns_server import dns_server

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    staff = UserFactory(username="staff@example.com", is_staff=True, is_superuser=True)
    client.force_login(staff)
    return client


def test_staff_creates_store_through_admin(staff_client, tenant):
    response = staff_client.post(
        reverse("admin:stores_store_add"), {"tenant": tenant.pk, "name": "coffee", "engine": "woocommerce"}
    )
    assert response.status_code == 302
    store = Store.objects.get(name="coffee")
    assert store.status == StoreStatus.REQUESTED
    assert ProvisioningRun.objects.get(store=store).status == RunStatus.QUEUED
    assert StoreEvent.objects.filter(store=store).count() == 1
    page = staff_client.get(reverse("admin:stores_store_change", args=[store.pk]))
    assert b"store-coffee" in page.content and b"Store requested." in page.content


def test_admin_add_shows_validator_message_and_keeps_input(staff_client, tenant):
    response = staff_client.post(
        reverse("admin:stores_store_add"), {"tenant": tenant.pk, "name": "Bad_Name", "engine": "woocommerce"}
    )
    assert response.status_code == 200
    assert b"must be lowercase" in response.content
    assert b'value="Bad_Name"' in response.content
    assert Store.objects.count() == 0


def test_admin_add_refuses_name_of_other_tenant(staff_client, tenant, other_tenant):
    store_create(tenant=other_tenant, name="coffee", engine="woocommerce")
    response = staff_client.post(
        reverse("admin:stores_store_add"), {"tenant": tenant.pk, "name": "coffee", "engine": "woocommerce"}
    )
    assert response.status_code == 200
    assert b"already taken" in response.content
    assert Store.objects.count() == 1


def test_changelist_shows_badge_and_last_event(staff_client, tenant):
    store_create(tenant=tenant, name="coffee", engine="medusa")
    response = staff_client.get(reverse("admin:stores_store_changelist") + "?status__exact=requested&q=coff")
    assert response.status_code == 200
    assert b"coffee" in response.content and b"Requested</span>" in response.content
    assert b"Store requested." in response.content


def test_status_is_read_only_in_change_form(staff_client, tenant):
    store, _ = store_create(tenant=tenant, name="coffee", engine="medusa")
    staff_client.post(
        reverse("admin:stores_store_change", args=[store.pk]), {"status": "ready", "name": "evil"}
    )
    store.refresh_from_db()
    assert (store.status, store.name) == (StoreStatus.REQUESTED, "coffee")


def test_retry_action_requeues_failed_store_and_reports_refusals(staff_client, tenant):
    failed, _ = store_create(tenant=tenant, name="failed-one", engine="woocommerce")
    ProvisioningRun.objects.filter(store=failed).update(status=RunStatus.FAILED)
    store_transition(store_id=failed.pk, to=StoreStatus.FAILED, reason="boom")
    requested, _ = store_create(tenant=tenant, name="fresh-one", engine="woocommerce")
    response = staff_client.post(
        reverse("admin:stores_store_changelist"),
        {"action": "retry_provisioning", ACTION_CHECKBOX_NAME: [failed.pk, requested.pk]},
        follow=True,
    )
    failed.refresh_from_db()
    assert failed.status == StoreStatus.REQUESTED
    assert ProvisioningRun.objects.filter(store=failed, kind=RunKind.PROVISION).count() == 2
    assert b"Retry queued for 1 store" in response.content
    assert b"Store fresh-one: Only a failed store can be retried" in response.content


def test_teardown_action_asks_for_confirmation_first(staff_client, tenant):
    store, _ = store_create(tenant=tenant, name="coffee", engine="woocommerce")
    url = reverse("admin:stores_store_changelist")
    confirm = staff_client.post(url, {"action": "tear_down", ACTION_CHECKBOX_NAME: [store.pk]})
    assert b"Yes, tear them down" in confirm.content
    store.refresh_from_db()
    assert store.status == StoreStatus.REQUESTED
    done = staff_client.post(
        url, {"action": "tear_down", ACTION_CHECKBOX_NAME: [store.pk], "confirmed": "yes"}, follow=True
    )
    store.refresh_from_db()
    assert store.status == StoreStatus.DELETING
    assert b"Teardown queued for 1 store" in done.content


def test_events_and_runs_cannot_be_deleted(staff_client, tenant):
    store, _ = store_create(tenant=tenant, name="coffee", engine="woocommerce")
    event = StoreEvent.objects.get(store=store)
    run = ProvisioningRun.objects.get(store=store)
    assert (
        staff_client.post(
            reverse("admin:stores_storeevent_delete", args=[event.pk]), {"post": "yes"}
        ).status_code
        == 403
    )
    assert (
        staff_client.post(
            reverse("admin:provisioning_provisioningrun_delete", args=[run.pk]), {"post": "yes"}
        ).status_code
        == 403
    )
    assert (
        staff_client.post(reverse("admin:stores_store_delete", args=[store.pk]), {"post": "yes"}).status_code
        == 403
    )
    assert (
        StoreEvent.objects.filter(pk=event.pk).exists() and ProvisioningRun.objects.filter(pk=run.pk).exists()
    )


def test_non_staff_user_is_refused(client, owner):
    client.force_login(owner)
    response = client.get(reverse("admin:stores_store_changelist"))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


# --- Action permissions (issue 15, finding 6) -------------------------------------------------------


def _staff_with(client, *codenames):
    from django.contrib.auth.models import Permission

    staff = UserFactory(username=f"staff-{'-'.join(codenames)}@example.com", is_staff=True)
    staff.user_permissions.set(
        Permission.objects.filter(content_type__app_label="stores", codename__in=codenames)
    )
    client.force_login(staff)
    return client


def _failed_store(tenant, name):
    store, _ = store_create(tenant=tenant, name=name, engine="woocommerce")
    ProvisioningRun.objects.filter(store=store).update(status=RunStatus.FAILED)
    store_transition(store_id=store.pk, to=StoreStatus.FAILED, reason="boom")
    return store


def test_view_only_staff_sees_stores_but_cannot_retry(client, tenant):
    store = _failed_store(tenant, "failed-one")
    viewer = _staff_with(client, "view_store")
    url = reverse("admin:stores_store_changelist")
    page = viewer.get(url)
    assert page.status_code == 200 and b"failed-one" in page.content
    assert b"retry_provisioning" not in page.content and b"tear_down" not in page.content
    viewer.post(url, {"action": "retry_provisioning", ACTION_CHECKBOX_NAME: [store.pk]}, follow=True)
    store.refresh_from_db()
    assert store.status == StoreStatus.FAILED
    assert ProvisioningRun.objects.filter(store=store).count() == 1


def test_view_only_staff_cannot_tear_down(client, tenant):
    store, _ = store_create(tenant=tenant, name="coffee", engine="woocommerce")
    viewer = _staff_with(client, "view_store")
    url = reverse("admin:stores_store_changelist")
    response = viewer.post(url, {"action": "tear_down", ACTION_CHECKBOX_NAME: [store.pk], "confirmed": "yes"})
    assert b"Yes, tear them down" not in response.content
    store.refresh_from_db()
    assert store.status == StoreStatus.REQUESTED


def test_change_permission_allows_retry_but_not_tear_down(client, tenant):
    failed = _failed_store(tenant, "failed-one")
    editor = _staff_with(client, "view_store", "change_store")
    url = reverse("admin:stores_store_changelist")
    editor.post(url, {"action": "retry_provisioning", ACTION_CHECKBOX_NAME: [failed.pk]})
    failed.refresh_from_db()
    assert failed.status == StoreStatus.REQUESTED
    editor.post(url, {"action": "tear_down", ACTION_CHECKBOX_NAME: [failed.pk], "confirmed": "yes"})
    failed.refresh_from_db()
    assert failed.status == StoreStatus.REQUESTED


def test_the_teardown_permission_allows_tear_down(client, tenant):
    store, _ = store_create(tenant=tenant, name="coffee", engine="woocommerce")
    operator = _staff_with(client, "view_store", "teardown_store")
    url = reverse("admin:stores_store_changelist")
    operator.post(url, {"action": "tear_down", ACTION_CHECKBOX_NAME: [store.pk], "confirmed": "yes"})
    store.refresh_from_db()
    assert store.status == StoreStatus.DELETING


def test_domain_admin_is_read_only_and_its_actions_call_the_services(staff_client, tenant, settings):
    store = StoreFactory(tenant=tenant, status=StoreStatus.READY)
    pending = domain_add(store=store, domain="pending.example.com")
    gone = domain_add(store=store, domain="gone.example.com")
    changelist = reverse("admin:stores_storedomain_changelist")

    page = staff_client.get(changelist).content.decode()
    assert 'data-status-colour="domain-pending_verification"' in page
    assert staff_client.get(reverse("admin:stores_storedomain_add")).status_code == 403
    # Every field is read-only: a posted status is ignored.
    staff_client.post(
        reverse("admin:stores_storedomain_change", args=[pending.pk]), {"status": DomainStatus.ACTIVE}
    )
    pending.refresh_from_db()
    assert pending.status == DomainStatus.PENDING_VERIFICATION

    with dns_server() as server:
        settings.DOMAIN_DNS_NAMESERVERS = [server.nameserver]
        server.zone.set_txt(domain_verification_name(pending.domain), pending.token)
        staff_client.post(changelist, {"action": "check_now", ACTION_CHECKBOX_NAME: [pending.pk]})
    staff_client.post(changelist, {"action": "remove", ACTION_CHECKBOX_NAME: [gone.pk]})

    assert StoreDomain.objects.get(pk=pending.pk).status == DomainStatus.VERIFIED
    assert StoreDomain.objects.get(pk=gone.pk).status == DomainStatus.REMOVED
    assert StoreDomain.objects.get(pk=gone.pk).events.last().actor.username == "staff@example.com"


def test_domain_admin_shows_and_filters_the_primary_domain_read_only(staff_client, tenant):
    store = StoreFactory(tenant=tenant, status=StoreStatus.READY)
    primary = domain_add(store=store, domain="primary.example.com")
    other = domain_add(store=store, domain="other.example.com")
    StoreDomain.objects.filter(pk=primary.pk).update(is_primary=True)
    changelist = reverse("admin:stores_storedomain_changelist")

    filtered = staff_client.get(changelist, {"is_primary__exact": "1"}).content.decode()
    assert "primary.example.com" in filtered
    assert "other.example.com" not in filtered
    assert 'alt="True"' in filtered
    # Read-only like the status: a posted flag is ignored (the merchant's service decides).
    staff_client.post(reverse("admin:stores_storedomain_change", args=[other.pk]), {"is_primary": "on"})
    assert not StoreDomain.objects.get(pk=other.pk).is_primary
