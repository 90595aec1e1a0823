"""The Domains section in Debian's Chromium against the live server: a refused domain is explained in
place, an added one shows its records, and a domain turns active on the page without a reload (htmx
polling) when its certificate is issued."""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings
from django.test import Client

from stores.choices import DomainStatus, StoreStatus
from stores.domain_transitions import domain_transition
from stores.models import StoreDomain
from stores.tests.factories import StoreFactory, default_plan

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
TIMEOUT_MS = 30_000


def _signed_in_context(browser, live_server, user):
    client = Client()
    client.force_login(user)
    context = browser.new_context(base_url=live_server.url)
    context.add_cookies(
        [
            {
                "name": django_settings.SESSION_COOKIE_NAME,
                "value": client.cookies[django_settings.SESSION_COOKIE_NAME].value,
                "url": live_server.url,
            }
        ]
    )
    return context


def test_domain_is_added_refused_and_turns_active_without_a_reload(
    browser, live_server, owner, tenant, settings
):
    settings.CLUSTER_IS_SIMULATED = True
    default_plan()
    store = StoreFactory(tenant=tenant, status=StoreStatus.READY, name="coffee")
    page = _signed_in_context(browser, live_server, owner).new_page()
    page.goto(f"/stores/{store.name}/")

    field = page.get_by_label("Domain", exact=True)
    field.fill("*.example.com")
    page.get_by_role("button", name="Add domain").click()
    page.locator("#store-domains .field__errors").get_by_text("Wildcard domains are not supported").wait_for(
        timeout=TIMEOUT_MS
    )
    assert page.get_by_label("Domain", exact=True).input_value() == "*.example.com"

    page.get_by_label("Domain", exact=True).fill("shop.example.com")
    page.get_by_role("button", name="Add domain").click()
    article = page.locator('#store-domains [data-domain="shop.example.com"]')
    article.wait_for(timeout=TIMEOUT_MS)
    domain = StoreDomain.objects.get(domain="shop.example.com")
    assert article.locator('[data-record="TXT"]').inner_text().count(domain.token) == 1

    # What the periodic pass does as the install and then cert-manager finish: the page follows.
    domain_transition(domain_id=domain.pk, to=DomainStatus.VERIFIED)
    domain_transition(domain_id=domain.pk, to=DomainStatus.ISSUING)
    page.locator('#store-domains [data-domain="shop.example.com"][data-status="issuing"]').wait_for(
        timeout=TIMEOUT_MS
    )
    domain_transition(
        domain_id=domain.pk, to=DomainStatus.ACTIVE, fields={"certificate_not_after": "2027-03-01T00:00:00Z"}
    )
    active = page.locator('#store-domains [data-domain="shop.example.com"][data-status="active"]')
    active.wait_for(timeout=TIMEOUT_MS)
    assert "Certificate valid until Mar 1, 2027" in " ".join(active.inner_text().split())
    assert page.evaluate("performance.getEntriesByType('navigation').length") == 1
