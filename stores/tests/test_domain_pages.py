"""The Domains section of the store page: add (refusals shown on the form), the records to create,
check now against a real DNS server on loopback, remove, htmx polling while a domain changes."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest

from stores.choices import DomainStatus, MembershipRole, StoreStatus
from stores.domain_transitions import domain_transition
from stores.domains import domain_add, domain_verification_name
from stores.models import StoreDomain
from stores.presentation import DOMAIN_STATUS_COLOURS
from stores.tests.factories import MembershipFactory, StoreFactory
from testkit.dns_server import dns_server

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture(autouse=True)
def platform(settings):
    settings.STORE_BASE_DOMAIN = "shops.test"
    settings.DASHBOARD_HOST = "dashboard.shops.test"
    settings.DOMAIN_INGRESS_CNAME_TARGET = "ingress.shops.test"
    settings.DOMAIN_VERIFICATION_PREFIX = "shops-challenge"


@pytest.fixture
def store(tenant):
    return StoreFactory(tenant=tenant, status=StoreStatus.READY, name="coffee")


@pytest.fixture
def signed_in(client, owner):
    client.force_login(owner)
    return client


def _text(response) -> str:
    return re.sub(r"\s+", " ", html.unescape(response.content.decode()))


def test_the_page_shows_the_exact_records_to_create(signed_in, store):
    domain = domain_add(store=store, domain="shop.example.com")
    page = _text(signed_in.get("/stores/coffee/"))
    assert 'id="store-domains"' in page
    assert "_shops-challenge.shop.example.com" in page
    assert domain.token in page
    assert "ingress.shops.test" in page
    # Pending: the section polls itself.
    assert 'hx-get="/stores/coffee/domains/"' in page


def test_add_through_htmx_returns_the_section_with_the_new_domain(signed_in, store):
    response = signed_in.post("/stores/coffee/domains/add/", {"domain": "Shop.Example.com"}, **HTMX)
    assert response.status_code == 200
    text = _text(response)
    assert text.startswith('<section id="store-domains"')
    assert 'data-domain="shop.example.com"' in text
    assert "shop.example.com added" in text
    assert StoreDomain.objects.get().domain == "shop.example.com"


@pytest.mark.parametrize(
    ("domain", "status", "message"),
    [
        ("*.example.com", 400, "Wildcard domains are not supported"),
        ("coffee.shops.test", 400, "belongs to the platform"),
        ("192.0.2.1", 400, "An IP address is not a domain"),
    ],
)
def test_refusals_show_on_the_form_and_keep_the_input(signed_in, store, domain, status, message):
    response = signed_in.post("/stores/coffee/domains/add/", {"domain": domain}, **HTMX)
    assert response.status_code == status
    text = _text(response)
    assert message in text
    assert f'value="{domain}"' in text
    assert not StoreDomain.objects.exists()


def test_another_accounts_domain_is_refused_without_a_full_page(signed_in, store, other_owner):
    theirs = StoreFactory(tenant=other_owner.memberships.get().tenant, status=StoreStatus.READY, name="tea")
    domain_add(store=theirs, domain="shop.example.com")
    response = signed_in.post("/stores/coffee/domains/add/", {"domain": "shop.example.com"}, **HTMX)
    assert response.status_code == 409
    assert "already claimed by another account" in _text(response)


def test_without_htmx_a_refusal_renders_the_whole_page(signed_in, store):
    response = signed_in.post("/stores/coffee/domains/add/", {"domain": "*.example.com"})
    assert response.status_code == 400
    assert "<html" in response.content.decode()
    assert "Wildcard" in _text(response)


def test_check_now_verifies_and_stops_showing_the_records(signed_in, store, settings):
    domain = domain_add(store=store, domain="shop.example.com")
    with dns_server() as server:
        settings.DOMAIN_DNS_NAMESERVERS = [server.nameserver]
        server.zone.set_txt(domain_verification_name(domain.domain), domain.token)
        response = signed_in.post(f"/stores/coffee/domains/{domain.pk}/check/", **HTMX)
    text = _text(response)
    assert 'data-status="verified"' in text
    assert "Ownership proven" in text
    assert domain.token not in text


def test_active_domain_shows_its_certificate_expiry_and_stops_polling(signed_in, store):
    domain = domain_add(store=store, domain="shop.example.com")
    for target in (DomainStatus.VERIFIED, DomainStatus.ISSUING):
        domain_transition(domain_id=domain.pk, to=target)
    domain_transition(
        domain_id=domain.pk,
        to=DomainStatus.ACTIVE,
        fields={"certificate_not_after": "2027-03-01T00:00:00Z"},
    )
    text = _text(signed_in.get("/stores/coffee/domains/"))
    assert 'data-status="active"' in text
    assert "Certificate valid until" in text and "Mar 1, 2027" in text
    assert "hx-trigger" not in text.split("<article")[0]


def test_remove_takes_the_domain_off_the_page(signed_in, store):
    domain = domain_add(store=store, domain="shop.example.com")
    response = signed_in.post(f"/stores/coffee/domains/{domain.pk}/remove/", **HTMX)
    assert 'data-domain="shop.example.com"' not in _text(response)
    domain.refresh_from_db()
    assert domain.status == DomainStatus.REMOVED


def test_another_tenants_domain_ids_are_404(client, store, other_owner):
    domain = domain_add(store=store, domain="shop.example.com")
    client.force_login(other_owner)
    assert client.post(f"/stores/coffee/domains/{domain.pk}/remove/").status_code == 404
    theirs = StoreFactory(tenant=other_owner.memberships.get().tenant, status=StoreStatus.READY, name="tea")
    assert client.post(f"/stores/tea/domains/{domain.pk}/remove/").status_code == 404
    assert theirs.pk and StoreDomain.objects.get().status == DomainStatus.PENDING_VERIFICATION


def test_members_see_domains_but_cannot_change_them(client, store, tenant):
    domain_add(store=store, domain="shop.example.com")
    member = MembershipFactory(tenant=tenant, role=MembershipRole.MEMBER).user
    client.force_login(member)
    page = _text(client.get("/stores/coffee/"))
    assert "Only the organisation's owners can add or remove domains." in page
    assert client.post("/stores/coffee/domains/add/", {"domain": "b.example.com"}).status_code == 403
    assert StoreDomain.objects.count() == 1


def test_the_domain_colours_stylesheet_matches_the_map():
    css = (Path(__file__).resolve().parents[2] / "static" / "css" / "status-colours.css").read_text()
    found = dict(
        re.findall(r'\[data-status-colour="domain-(\w+)"\] \{ --badge-colour: (#[0-9a-f]{6}); \}', css)
    )
    assert found == {str(k): v for k, v in DOMAIN_STATUS_COLOURS.items()}
