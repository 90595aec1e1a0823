"""The webhooks settings pages: add with the secret shown once, refusals in plain words, the delivery
log with resend, a disabled endpoint's notice, and tenant scoping."""

from __future__ import annotations

import html
import re

import pytest
from django.core.cache import cache
from django.utils import timezone

from stores.choices import MembershipRole, WebhookDeliveryStatus
from stores.models import WebhookDelivery, WebhookEndpoint
from stores.tests.factories import MembershipFactory, StoreFactory
from stores.webhooks import webhook_endpoint_create

pytestmark = pytest.mark.django_db
URL = "http://127.0.0.1:9/hooks"


@pytest.fixture(autouse=True)
def _pages_settings(settings):
    settings.CLUSTER_IS_SIMULATED = True
    # Loopback is refused by the SSRF guard unless staff allow it, as here.
    settings.WEBHOOK_ALLOWED_TARGET_CIDRS = ["127.0.0.0/8"]
    cache.clear()


def _text(response) -> str:
    return re.sub(r"\s+", " ", html.unescape(response.content.decode()))


def test_an_owner_adds_an_endpoint_and_sees_the_secret_once(client, owner):
    client.force_login(owner)
    response = client.post("/settings/webhooks/", {"url": URL, "event_types": ["store.ready"]})
    assert response.status_code == 201
    secret = re.search(r'id="new-secret">(whsec_[^<]+)<', response.content.decode()).group(1)
    assert "no-store" in response["Cache-Control"]
    again = client.get("/settings/webhooks/")
    assert URL in _text(again) and secret not in again.content.decode()
    assert WebhookEndpoint.objects.get().event_types == ["store.ready"]


def test_a_refused_url_is_shown_on_the_field_and_nothing_is_stored(client, owner):
    client.force_login(owner)
    response = client.post("/settings/webhooks/", {"url": "http://169.254.169.254/latest/"})
    assert response.status_code == 400
    assert "link-local" in _text(response)
    assert not WebhookEndpoint.objects.exists()


def test_members_see_why_they_cannot_add_and_a_post_is_refused(client, tenant):
    member = MembershipFactory(tenant=tenant, role=MembershipRole.MEMBER).user
    client.force_login(member)
    assert "Only the organisation's owners can manage webhook endpoints." in _text(
        client.get("/settings/webhooks/")
    )
    assert client.post("/settings/webhooks/", {"url": URL}).status_code == 403
    assert not WebhookEndpoint.objects.exists()


def test_the_delivery_log_shows_attempts_and_resends(client, owner, tenant):
    endpoint, _ = webhook_endpoint_create(tenant=tenant, url=URL)
    StoreFactory(tenant=tenant, failed=True)
    delivery = WebhookDelivery.objects.get(endpoint=endpoint, message__event_type="store.failed")
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status=WebhookDeliveryStatus.FAILED, attempts=9, last_status_code=503, last_duration_ms=41
    )
    client.force_login(owner)
    page = _text(client.get(f"/settings/webhooks/{endpoint.pk}/"))
    assert "store.failed" in page and "HTTP 503 in 41 ms" in page and delivery.message.msg_id in page
    response = client.post(
        f"/settings/webhooks/{endpoint.pk}/", {"action": "resend", "delivery": delivery.pk}
    )
    assert response.status_code == 302
    assert WebhookDelivery.objects.get(pk=delivery.pk).status == WebhookDeliveryStatus.PENDING


def test_a_disabled_endpoint_shows_why_and_can_be_enabled(client, owner, tenant):
    endpoint, _ = webhook_endpoint_create(tenant=tenant, url=URL)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        disabled_at=timezone.now(), disabled_reason="Every delivery failed for 3 days, so sending stopped."
    )
    client.force_login(owner)
    assert "failed for 3 days" in _text(client.get("/settings/webhooks/"))
    assert "Enable again" in _text(client.get(f"/settings/webhooks/{endpoint.pk}/"))
    client.post(f"/settings/webhooks/{endpoint.pk}/", {"action": "enable"})
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).is_enabled


def test_rotating_shows_the_new_secret_once(client, owner, tenant):
    endpoint, old = webhook_endpoint_create(tenant=tenant, url=URL)
    client.force_login(owner)
    response = client.post(f"/settings/webhooks/{endpoint.pk}/", {"action": "rotate"})
    assert response.status_code == 200
    new = re.search(r'id="new-secret">(whsec_[^<]+)<', response.content.decode()).group(1)
    assert new != old and "old secret too" in _text(response)


def test_another_tenants_endpoint_is_a_404_and_unchanged(client, other_owner, tenant):
    endpoint, _ = webhook_endpoint_create(tenant=tenant, url=URL)
    client.force_login(other_owner)
    assert client.get(f"/settings/webhooks/{endpoint.pk}/").status_code == 404
    assert client.post(f"/settings/webhooks/{endpoint.pk}/", {"action": "delete"}).status_code == 404
    assert URL not in _text(client.get("/settings/webhooks/"))
    assert WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()


def test_staff_see_endpoints_and_deliveries_read_only_without_the_secret(admin_client, tenant):
    endpoint, secret = webhook_endpoint_create(tenant=tenant, url=URL)
    StoreFactory(tenant=tenant, failed=True)
    page = admin_client.get(f"/admin/stores/webhookendpoint/{endpoint.pk}/change/").content.decode()
    assert URL in page and secret not in page and endpoint.secret_sealed not in page
    delivery = WebhookDelivery.objects.filter(endpoint=endpoint).first()
    assert admin_client.get(f"/admin/stores/webhookdelivery/{delivery.pk}/change/").status_code == 200
    assert admin_client.get("/admin/stores/webhookendpoint/add/").status_code == 403
