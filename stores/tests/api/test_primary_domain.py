"""The primary-domain API: POST makes an active domain primary, DELETE unsets it; other tenants get
404, members 403, a domain that is not active 409 with the service's message."""

from __future__ import annotations

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from provisioning.choices import RunStatus
from provisioning.models import ProvisioningRun
from stores.choices import DomainStatus, MembershipRole, StoreStatus
from stores.domain_transitions import domain_transition
from stores.domains import domain_add
from stores.models import StoreDomain
from stores.release import store_helm_values
from stores.tests.factories import MembershipFactory, StoreFactory
from stores.transitions import store_transition

pytestmark = pytest.mark.django_db


@pytest.fixture
def store(tenant):
    return StoreFactory(tenant=tenant, ready=True, name="coffee")


def _domain(store, name: str, *statuses: DomainStatus) -> StoreDomain:
    domain = domain_add(store=store, domain=name)
    for status in statuses:
        fields = {"verified_at": timezone.now()} if status == DomainStatus.VERIFIED else None
        assert domain_transition(domain_id=domain.pk, to=status, fields=fields)
    domain.refresh_from_db()
    return domain


ACTIVE = (DomainStatus.VERIFIED, DomainStatus.ISSUING, DomainStatus.ACTIVE)


def url(store, domain: str) -> str:
    return f"/api/v1/stores/{store.name}/domains/{domain}/primary/"


def _ready_again(store) -> None:
    ProvisioningRun.objects.filter(store=store, status=RunStatus.QUEUED).update(status=RunStatus.SUCCEEDED)
    for status in (StoreStatus.PROVISIONING, StoreStatus.READY):
        assert store_transition(store_id=store.pk, to=status)


def test_post_makes_an_active_domain_primary_and_delete_unsets_it(api, store):
    _domain(store, "shop.example.com", *ACTIVE)

    response = api.post(url(store, "Shop.Example.com"))

    assert response.status_code == 200, response.content
    assert response.json()["domain"] == "shop.example.com"
    assert response.json()["primary"] is True
    store.refresh_from_db()
    assert store.status == StoreStatus.REQUESTED
    assert store_helm_values(store)["domains"]["primary"] == "shop.example.com"
    listed = api.get(f"/api/v1/stores/{store.name}/domains/").json()["results"]
    assert [(d["domain"], d["primary"]) for d in listed] == [("shop.example.com", True)]

    _ready_again(store)
    response = api.delete(url(store, "shop.example.com"))
    assert response.status_code == 200, response.content
    assert response.json()["primary"] is False
    assert response.json()["status"] == "active"
    store.refresh_from_db()
    assert store.status == StoreStatus.REQUESTED
    assert store_helm_values(store)["domains"]["primary"] == ""


def test_a_domain_that_is_not_active_is_a_409_with_the_reason(api, store):
    _domain(store, "shop.example.com", DomainStatus.VERIFIED, DomainStatus.ISSUING)
    response = api.post(url(store, "shop.example.com"))
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "invalid_state"
    assert "only an active domain" in response.json()["error"]["message"]
    assert not StoreDomain.objects.get().is_primary


def test_a_busy_store_is_a_409(api, store):
    _domain(store, "shop.example.com", *ACTIVE)
    _domain(store, "www.example.com", *ACTIVE)
    assert api.post(url(store, "shop.example.com")).status_code == 200
    response = api.post(url(store, "www.example.com"))
    assert response.status_code == 409
    assert "once it is ready" in response.json()["error"]["message"]


def test_other_tenants_and_unknown_domains_are_404(api, other_api, store):
    _domain(store, "shop.example.com", *ACTIVE)
    assert other_api.post(url(store, "shop.example.com")).status_code == 404
    assert other_api.delete(url(store, "shop.example.com")).status_code == 404
    assert api.post(url(store, "nope.example.com")).status_code == 404
    assert not StoreDomain.objects.get().is_primary


def test_members_may_not_change_the_primary(store, tenant):
    _domain(store, "shop.example.com", *ACTIVE)
    member = MembershipFactory(tenant=tenant, role=MembershipRole.MEMBER).user
    client = APIClient()
    client.force_login(member)
    assert client.post(url(store, "shop.example.com")).status_code == 403
    StoreDomain.objects.update(is_primary=True)
    assert client.delete(url(store, "shop.example.com")).status_code == 403
    assert StoreDomain.objects.get().is_primary
