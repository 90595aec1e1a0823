"""The primary domain on the store page's Domains section: "Make primary" only for active domains, a
Primary badge, "Use the platform address" to unset; refusals shown as messages; owners only."""

from __future__ import annotations

import html
import re

import pytest

from stores.choices import DomainStatus, MembershipRole, StoreStatus
from stores.domain_transitions import domain_transition
from stores.domains import domain_add
from stores.models import StoreDomain
from stores.tests.factories import MembershipFactory, StoreFactory

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}
ACTIVE = (DomainStatus.VERIFIED, DomainStatus.ISSUING, DomainStatus.ACTIVE)


@pytest.fixture
def store(tenant):
    return StoreFactory(tenant=tenant, status=StoreStatus.READY, name="coffee")


@pytest.fixture
def signed_in(client, owner):
    client.force_login(owner)
    return client


def _domain(store, name: str, *statuses: DomainStatus) -> StoreDomain:
    domain = domain_add(store=store, domain=name)
    for status in statuses:
        assert domain_transition(domain_id=domain.pk, to=status)
    return domain


def _text(response) -> str:
    return re.sub(r"\s+", " ", html.unescape(response.content.decode()))


def _article(text: str, domain: str) -> str:
    return text.split(f'data-domain="{domain}"')[1].split("</article>")[0]


def test_only_active_domains_offer_make_primary(signed_in, store):
    _domain(store, "shop.example.com", *ACTIVE)
    _domain(store, "www.example.com", DomainStatus.VERIFIED, DomainStatus.ISSUING)
    text = _text(signed_in.get("/stores/coffee/"))
    assert "Make primary" in _article(text, "shop.example.com")
    assert "Make primary" not in _article(text, "www.example.com")
    assert "data-primary" not in text


def test_make_primary_shows_the_badge_and_the_way_back(signed_in, store):
    domain = _domain(store, "shop.example.com", *ACTIVE)
    response = signed_in.post(f"/stores/coffee/domains/{domain.pk}/primary/", **HTMX)
    assert response.status_code == 200
    text = _text(response)
    article = _article(text, "shop.example.com")
    assert "data-primary>Primary</span>" in article
    assert "Use the platform address" in article
    assert "Make primary" not in article
    assert "shop.example.com is now the primary domain" in text
    assert StoreDomain.objects.get(pk=domain.pk).is_primary
    store.refresh_from_db()
    assert store.status == StoreStatus.REQUESTED


def test_use_the_platform_address_unsets_it(signed_in, store):
    domain = _domain(store, "shop.example.com", *ACTIVE)
    StoreDomain.objects.filter(pk=domain.pk).update(is_primary=True)
    response = signed_in.post(f"/stores/coffee/domains/{domain.pk}/unset-primary/", **HTMX)
    text = _text(response)
    assert f"The store uses {store.host} as its address again." in text
    assert "Make primary" in _article(text, "shop.example.com")
    assert not StoreDomain.objects.get(pk=domain.pk).is_primary


def test_a_domain_that_is_not_active_is_refused_with_the_reason(signed_in, store):
    domain = _domain(store, "shop.example.com", DomainStatus.VERIFIED, DomainStatus.ISSUING)
    text = _text(signed_in.post(f"/stores/coffee/domains/{domain.pk}/primary/", **HTMX))
    assert "only an active domain (one with a certificate) can be the primary domain" in text
    assert not StoreDomain.objects.get(pk=domain.pk).is_primary


def test_a_failed_primary_says_the_platform_address_is_used(signed_in, store):
    domain = _domain(store, "shop.example.com", *ACTIVE)
    StoreDomain.objects.filter(pk=domain.pk).update(is_primary=True)
    domain_transition(domain_id=domain.pk, to=DomainStatus.FAILED, reason="renewal refused")
    article = _article(_text(signed_in.get("/stores/coffee/domains/")), "shop.example.com")
    assert f"Your store uses {store.host} until this domain is active again." in article
    assert "Use the platform address" in article


def test_without_a_page_refresh_the_post_redirects_to_the_store(signed_in, store):
    domain = _domain(store, "shop.example.com", *ACTIVE)
    response = signed_in.post(f"/stores/coffee/domains/{domain.pk}/primary/")
    assert response.status_code == 302
    assert response["Location"] == "/stores/coffee/"


def test_members_and_other_tenants_cannot_change_the_primary(client, store, tenant, other_owner):
    domain = _domain(store, "shop.example.com", *ACTIVE)
    member = MembershipFactory(tenant=tenant, role=MembershipRole.MEMBER).user
    client.force_login(member)
    assert client.post(f"/stores/coffee/domains/{domain.pk}/primary/").status_code == 403
    client.force_login(other_owner)
    assert client.post(f"/stores/coffee/domains/{domain.pk}/primary/").status_code == 404
    assert client.post(f"/stores/coffee/domains/{domain.pk}/unset-primary/").status_code == 404
    assert not StoreDomain.objects.get(pk=domain.pk).is_primary
