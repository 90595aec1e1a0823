"""A merchant's whole journey in Debian's Chromium: live server + real Celery worker + Kubernetes API double.

Screenshots land in test-artifacts/ so a person can check the layout.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core import mail
from django.core.cache import cache

from stores.choices import StoreEventKind, StoreStatus
from stores.models import Store, StoreEvent
from stores.tests.factories import default_plan
from testkit.helm import HELM_BINARIES
from testkit.waiting import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ARTIFACTS = Path(django_settings.BASE_DIR) / "test-artifacts"
PASSWORD = "a long and unusual passphrase"
# Provisioning against the double takes seconds; this bounds a stuck run, not the normal path.
SETTLE_TIMEOUT_MS = 90_000


@pytest.fixture
def platform(settings, kube_api, start_worker):
    """Web pages served in this process and a real worker, both talking to the Kubernetes API double."""
    settings.KUBECONFIG = str(kube_api.kubeconfig_path)
    settings.CLUSTER_IS_SIMULATED = True
    default_plan()  # transactional tests flush the seeded plans
    cache.clear()
    start_worker(kube_api, HELM_BINARIES["helm4"])
    ARTIFACTS.mkdir(exist_ok=True)
    yield kube_api
    cache.clear()


def _sign_up(page, base_url: str, email: str, organisation: str) -> None:
    page.goto(f"{base_url}/")
    page.get_by_role("link", name="Create your store").first.click()
    page.get_by_label("Work email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Organisation name").fill(organisation)
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url(f"{base_url}/stores/")
    # Confirm the e-mail with the link the signup mailed (the test outbox of this process).
    link = re.search(r"https?://[^/\s]+(/accounts/verify-email/\S+/)", mail.outbox[-1].body).group(1)
    page.goto(f"{base_url}{link}")
    page.wait_for_url(f"{base_url}/stores/")


def _watch_navigations(page) -> list[str]:
    """URLs the main frame navigated to from now on; htmx swaps never appear here."""
    navigations: list[str] = []
    page.on(
        "framenavigated", lambda frame: navigations.append(frame.url) if frame == page.main_frame else None
    )
    page.evaluate("window.__sameDocument = true")
    return navigations


def test_merchant_launches_watches_reveals_and_deletes_a_store(browser, platform, live_server):
    from playwright.sync_api import expect

    kube_api = platform
    base = live_server.url
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    # The Content-Security-Policy (issue 15) is enforced by Chromium: htmx and app.js must run under it.
    refused: list[str] = []
    page.on(
        "console",
        lambda message: refused.append(message.text) if "Content Security Policy" in message.text else None,
    )

    page.goto(f"{base}/")
    page.screenshot(path=str(ARTIFACTS / "landing.png"), full_page=True)
    _sign_up(page, base, "owner@corner.example", "Corner Shop Ltd")
    expect(page.get_by_role("heading", name="Launch your first store")).to_be_visible()
    expect(page.get_by_text("Simulated cluster")).to_be_visible()
    expect(page.locator("#plan-usage")).to_contain_text("0 of 3")

    # Launch: the live check explains a bad name and offers a valid one.
    page.get_by_role("link", name="Launch a store").first.click()
    name_input = page.get_by_label("Store name")
    name_input.type("Corner Shop")
    feedback = page.locator("#id_name_feedback")
    expect(feedback).to_contain_text("cannot contain spaces", timeout=10_000)
    feedback.get_by_role("button", name="Use “corner-shop”").click()
    expect(feedback).to_contain_text("“corner-shop” is available", timeout=10_000)
    expect(page.get_by_label("WooCommerce")).to_be_checked()
    page.screenshot(path=str(ARTIFACTS / "launch.png"), full_page=True)
    page.get_by_role("button", name="Launch store").click()
    page.wait_for_url(f"{base}/stores/corner-shop/")

    # The status panel follows the store to ready without reloading the page.
    navigations = _watch_navigations(page)
    badge = page.locator("#store-status .badge")
    expect(badge).to_have_attribute("data-status", "ready", timeout=SETTLE_TIMEOUT_MS)
    assert navigations == [] and page.evaluate("window.__sameDocument") is True
    # The "on its way" notice went with the work it announced.
    expect(page.get_by_text("is on its way")).to_have_count(0)
    expect(page.locator('.timeline__step--done[data-step="helm"]')).to_be_visible()
    expect(page.get_by_role("link", name="Open store admin")).to_have_attribute(
        "href", "http://corner-shop.127.0.0.1.nip.io/wp-admin/"
    )
    # Settled: the panel no longer polls.
    assert page.locator("#store-status").get_attribute("hx-trigger") is None

    # Reveal the admin credentials: they are the ones in the store's Secret, and the reveal is audited.
    page.get_by_role("button", name="Reveal admin credentials").click()
    shown = page.locator('[data-credential="password"]')
    expect(shown).not_to_be_empty(timeout=15_000)
    secret = kube_api.get("secrets", "store-credentials", "store-corner-shop")
    assert shown.inner_text() == base64.b64decode(secret["data"]["admin-password"]).decode()
    assert page.locator('[data-credential="username"]').inner_text() == "admin"
    assert StoreEvent.objects.filter(
        store__name="corner-shop", kind=StoreEventKind.AUDIT, step="credentials-revealed"
    ).exists()
    page.screenshot(path=str(ARTIFACTS / "store-page.png"), full_page=True)

    page.goto(f"{base}/stores/")
    row = page.locator("#store-row-corner-shop")
    expect(row.locator(".badge")).to_have_attribute("data-status", "ready")
    expect(row.get_by_role("link", name="corner-shop.127.0.0.1.nip.io")).to_be_visible()
    expect(page.locator("#plan-usage")).to_contain_text("1 of 3")
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)

    # Phone-sized views of the same pages.
    phone = browser.new_context(viewport={"width": 390, "height": 844}, storage_state=context.storage_state())
    phone_page = phone.new_page()
    phone_page.goto(f"{base}/stores/")
    phone_page.screenshot(path=str(ARTIFACTS / "dashboard-phone.png"), full_page=True)
    phone_page.goto(f"{base}/stores/corner-shop/")
    phone_page.screenshot(path=str(ARTIFACTS / "store-page-phone.png"), full_page=True)
    phone.close()

    # Delete: a wrong name is refused, the exact name starts teardown, and the page follows it.
    page.goto(f"{base}/stores/corner-shop/")
    page.get_by_text("Delete store…").click()
    page.get_by_label("Type the store name to confirm").fill("corner")
    page.get_by_role("button", name="Delete “corner-shop” forever").click()
    expect(page.get_by_text("That does not match")).to_be_visible()
    assert Store.objects.get(name="corner-shop").status == StoreStatus.READY
    page.get_by_label("Type the store name to confirm").fill("corner-shop")
    page.get_by_role("button", name="Delete “corner-shop” forever").click()
    page.wait_for_url(f"{base}/stores/corner-shop/")
    navigations = _watch_navigations(page)
    expect(page.get_by_role("heading", name="Deletion progress")).to_be_visible()
    expect(page.locator("#store-status .badge")).to_have_attribute(
        "data-status", "deleted", timeout=SETTLE_TIMEOUT_MS
    )
    assert navigations == [] and page.evaluate("window.__sameDocument") is True
    assert kube_api.get("namespaces", "store-corner-shop") is None
    page.goto(f"{base}/stores/")
    expect(page.locator("#store-row-corner-shop")).to_have_count(0)
    expect(page.get_by_role("heading", name="Launch your first store")).to_be_visible()
    assert refused == []
    context.close()


def test_dashboard_row_disappears_when_teardown_finishes_and_others_see_nothing(
    browser, platform, live_server
):
    from playwright.sync_api import expect

    kube_api = platform

    base = live_server.url
    owner = browser.new_context()
    page = owner.new_page()
    _sign_up(page, base, "first@tenant.example", "First Tenant")
    page.get_by_role("link", name="Launch a store").first.click()
    page.get_by_label("Store name").fill("first-shop")
    page.get_by_role("button", name="Launch store").click()
    page.wait_for_url(f"{base}/stores/first-shop/")
    expect(page.locator("#store-status .badge")).to_have_attribute(
        "data-status", "ready", timeout=SETTLE_TIMEOUT_MS
    )

    # A second merchant sees none of it: not on the dashboard, and the store's URLs are 404s.
    stranger = browser.new_context()
    other = stranger.new_page()
    _sign_up(other, base, "second@tenant.example", "Second Tenant")
    expect(other.get_by_role("heading", name="Launch your first store")).to_be_visible()
    expect(other.get_by_text("first-shop")).to_have_count(0)
    for path in ["/stores/first-shop/", "/stores/first-shop/status/", "/stores/first-shop/row/"]:
        assert other.goto(f"{base}{path}").status == 404
    assert other.request.post(f"{base}/stores/first-shop/credentials/").status in {403, 404}
    stranger.close()

    # The owner deletes from the store page, then watches the row vanish from the dashboard. The
    # double's namespace controller is paused so the row is surely still there when the page opens.
    kube_api.set_controllers(False)
    page.get_by_text("Delete store…").click()
    page.get_by_label("Type the store name to confirm").fill("first-shop")
    page.get_by_role("button", name="Delete “first-shop” forever").click()
    page.wait_for_url(f"{base}/stores/first-shop/")
    page.goto(f"{base}/stores/")
    navigations = _watch_navigations(page)
    expect(page.locator("#store-row-first-shop .badge")).to_have_attribute("data-status", "deleting")
    kube_api.set_controllers(True)
    expect(page.locator("#store-row-first-shop")).to_have_count(0, timeout=SETTLE_TIMEOUT_MS)
    assert navigations == [] and page.evaluate("window.__sameDocument") is True
    wait_for(
        lambda: Store.objects.filter(name="first-shop", status=StoreStatus.DELETED).exists(),
        timeout=10,
        what="store deleted",
    )
    owner.close()
