"""POST /stores/<name>/suspend/ and /resume/: accepted with the store, and every refusal (another
tenant's store, a member, a read-only token, the wrong status, a pause staff or billing made)."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from provisioning.choices import RunStatus
from provisioning.models import ProvisioningRun
from stores.choices import MembershipRole, StoreStatus, SuspensionSource
from stores.models import Store
from stores.suspension import store_suspend
from stores.tests.api.conftest import client_with_token, token_for
from stores.tests.factories import MembershipFactory, StoreFactory
from stores.transitions import store_transition

pytestmark = pytest.mark.django_db

STORES = "/api/v1/stores/"


def _paused(tenant, source):
    store = StoreFactory(ready=True, tenant=tenant)
    store_suspend(store=store, source=source, reason="paused for the test")
    ProvisioningRun.objects.filter(store=store, status=RunStatus.QUEUED).update(status=RunStatus.SUCCEEDED)
    assert store_transition(store_id=store.pk, to=StoreStatus.SUSPENDED, reason="scaled to zero")
    return store


def test_suspend_is_accepted_with_the_reason_and_a_queued_run(api, tenant):
    store = StoreFactory(ready=True, tenant=tenant)

    response = api.post(f"{STORES}{store.name}/suspend/", {"reason": "closed for winter"}, format="json")

    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["status"] == "suspending" and body["status_reason"] == "closed for winter"
    assert body["suspension"]["source"] == "tenant" and body["suspension"]["reason"] == "closed for winter"
    assert body["latest_run"]["status"] == "queued"
    assert Store.objects.get(pk=store.pk).status == StoreStatus.SUSPENDING


def test_resume_of_the_organisations_own_pause_is_accepted(api, tenant):
    store = _paused(tenant, SuspensionSource.TENANT)

    response = api.post(f"{STORES}{store.name}/resume/")

    assert response.status_code == 202, response.json()
    assert response.json()["status"] == "resuming" and response.json()["suspension"] is None


@pytest.mark.parametrize("source", [SuspensionSource.STAFF, SuspensionSource.BILLING])
def test_resume_of_a_staff_or_billing_pause_is_forbidden_with_the_reason(api, tenant, source):
    store = _paused(tenant, source)

    response = api.post(f"{STORES}{store.name}/resume/")

    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "resume_not_allowed"
    assert ("support" if source == SuspensionSource.STAFF else "unpaid") in error["message"]
    assert Store.objects.get(pk=store.pk).status == StoreStatus.SUSPENDED


def test_another_tenants_store_is_404_for_both_commands(other_api, tenant):
    running = StoreFactory(ready=True, tenant=tenant)
    paused = _paused(tenant, SuspensionSource.TENANT)

    assert other_api.post(f"{STORES}{running.name}/suspend/").status_code == 404
    assert other_api.post(f"{STORES}{paused.name}/resume/").status_code == 404
    assert Store.objects.get(pk=running.pk).status == StoreStatus.READY
    assert Store.objects.get(pk=paused.pk).status == StoreStatus.SUSPENDED


def test_a_member_may_not_suspend_or_resume(tenant):
    member = MembershipFactory(tenant=tenant, role=MembershipRole.MEMBER).user
    api = APIClient()
    api.force_login(member)  # members hold no tokens; the browsable API uses the session
    running = StoreFactory(ready=True, tenant=tenant)
    paused = _paused(tenant, SuspensionSource.TENANT)

    suspend = api.post(f"{STORES}{running.name}/suspend/")
    resume = api.post(f"{STORES}{paused.name}/resume/")

    assert (suspend.status_code, resume.status_code) == (403, 403)
    assert "owners can pause" in suspend.json()["error"]["message"]
    assert Store.objects.get(pk=running.pk).status == StoreStatus.READY


def test_a_read_only_token_may_not_suspend(owner, tenant):
    api = client_with_token(token_for(owner, read_only=True))
    store = StoreFactory(ready=True, tenant=tenant)

    assert api.post(f"{STORES}{store.name}/suspend/").status_code == 403


@pytest.mark.parametrize("status", [StoreStatus.PROVISIONING, StoreStatus.FAILED, StoreStatus.DELETED])
def test_suspend_of_a_store_that_is_not_running_is_a_conflict(api, tenant, status):
    store = StoreFactory(status=status, tenant=tenant)

    response = api.post(f"{STORES}{store.name}/suspend/")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "invalid_state"
    assert f"this one is {status}" in response.json()["error"]["message"]


def test_resume_of_a_store_that_is_not_suspended_is_a_conflict(api, tenant):
    store = StoreFactory(ready=True, tenant=tenant)

    response = api.post(f"{STORES}{store.name}/resume/")

    assert response.status_code == 409
    assert "Only a suspended store can be resumed" in response.json()["error"]["message"]


def test_a_too_long_reason_is_a_field_error(api, tenant):
    store = StoreFactory(ready=True, tenant=tenant)

    response = api.post(f"{STORES}{store.name}/suspend/", {"reason": "x" * 501}, format="json")

    assert response.status_code == 400
    assert Store.objects.get(pk=store.pk).status == StoreStatus.READY


def test_the_store_shows_no_suspension_while_running(api, tenant):
    store = StoreFactory(ready=True, tenant=tenant)

    assert api.get(f"{STORES}{store.name}/").json()["suspension"] is None
