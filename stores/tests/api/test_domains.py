"""The custom-domain API: list, add (every refusal as a 4xx with the service's message), check against
a real DNS server on loopback, remove; scoped to the caller's tenant, owners only for changes."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from stores.choices import DomainStatus, MembershipRole
from stores.domains import domain_verification_name
from stores.models import StoreDomain
from stores.tests.factories import MembershipFactory, StoreFactory
from testkit.dns_server import dns_server

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def platform(settings):
    settings.STORE_BASE_DOMAIN = "shops.test"
    settings.DASHBOARD_HOST = "dashboard.shops.test"
    settings.DOMAIN_INGRESS_CNAME_TARGET = "ingress.shops.test"
    settings.DOMAIN_VERIFICATION_PREFIX = "shops-challenge"


@pytest.fixture
def store(tenant):
    return StoreFactory(tenant=tenant, ready=True, name="coffee")


def url(store, *rest: str) -> str:
    return "/".join([f"/api/v1/stores/{store.name}/domains", *rest]) + "/"


def test_add_returns_201_with_the_records_to_create(api, store):
    response = api.post(url(store), {"domain": "Shop.Example.com"}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    token = StoreDomain.objects.get().token
    assert body["domain"] == "shop.example.com"
    assert body["status"] == "pending_verification"
    assert body["records"][:2] == [
        {
            "type": "TXT",
            "name": "_shops-challenge.shop.example.com",
            "value": token,
            "note": "Proves you control the domain.",
        },
        {
            "type": "CNAME",
            "name": "shop.example.com",
            "value": "ingress.shops.test",
            "note": "Sends shoppers to the store (for a subdomain such as www or shop).",
        },
    ]
    listed = api.get(url(store)).json()["results"]
    assert [d["domain"] for d in listed] == ["shop.example.com"]


@pytest.mark.parametrize(
    ("domain", "status", "code", "message"),
    [
        ("*.example.com", 400, "invalid_domain", "Wildcard"),
        ("203.0.113.9", 400, "invalid_domain", "IP address"),
        ("coffee.shops.test", 400, "invalid_domain", "belongs to the platform"),
        ("coffee.sh\u043eps.test", 400, "invalid_domain", "looks like the platform"),
        ("shop", 400, "invalid_domain", "not a full domain name"),
    ],
)
def test_refusals_are_4xx_with_the_services_message(api, store, domain, status, code, message):
    response = api.post(url(store), {"domain": domain}, format="json")
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert message in response.json()["error"]["message"]
    assert not StoreDomain.objects.exists()


def test_another_tenants_claim_is_a_409(api, other_api, store, other_owner):
    theirs = StoreFactory(tenant=other_owner.memberships.get().tenant, ready=True, name="tea")
    assert other_api.post(url(theirs), {"domain": "shop.example.com"}, format="json").status_code == 201
    response = api.post(url(store), {"domain": "shop.example.com"}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "domain_taken"
    assert "another account" in response.json()["error"]["message"]


def test_other_tenants_domains_are_404(api, other_api, store):
    api.post(url(store), {"domain": "shop.example.com"}, format="json")
    assert other_api.get(url(store)).status_code == 404
    assert other_api.post(url(store, "shop.example.com", "check")).status_code == 404
    assert other_api.delete(url(store, "shop.example.com")).status_code == 404
    assert StoreDomain.objects.get().status == DomainStatus.PENDING_VERIFICATION


def test_members_may_look_but_not_change(api, store, tenant):
    api.post(url(store), {"domain": "shop.example.com"}, format="json")
    member = MembershipFactory(tenant=tenant, role=MembershipRole.MEMBER).user
    # Members cannot mint tokens; their browser session reaches the API too.
    client = APIClient()
    client.force_login(member)
    assert client.get(url(store)).status_code == 200
    assert client.post(url(store), {"domain": "b.example.com"}, format="json").status_code == 403
    assert client.delete(url(store, "shop.example.com")).status_code == 403
    assert StoreDomain.objects.count() == 1


def test_check_now_verifies_against_real_dns(api, store, settings):
    api.post(url(store), {"domain": "shop.example.com"}, format="json")
    domain = StoreDomain.objects.get()
    with dns_server() as server:
        settings.DOMAIN_DNS_NAMESERVERS = [server.nameserver]
        first = api.post(url(store, "shop.example.com", "check")).json()
        server.zone.set_txt(domain_verification_name(domain.domain), domain.token)
        second = api.post(url(store, "shop.example.com", "check")).json()
    assert first["status"] == "pending_verification"
    assert "No TXT record" in first["status_reason"]
    assert second["status"] == "verified"


def test_remove_frees_the_domain(api, store):
    api.post(url(store), {"domain": "shop.example.com"}, format="json")
    response = api.delete(url(store, "shop.example.com"))
    assert response.status_code == 200
    assert response.json()["status"] == "removed"
    assert api.get(url(store)).json()["results"] == []
    assert api.delete(url(store, "shop.example.com")).status_code == 404
