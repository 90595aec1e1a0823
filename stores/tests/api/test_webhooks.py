"""The webhook endpoints API: secrets shown once, tenant scoping, owners only, the delivery log and resend."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from stores.choices import WebhookDeliveryStatus
from stores.models import WebhookDelivery, WebhookEndpoint
from stores.tests.api.conftest import client_with_token, token_for
from stores.tests.factories import MembershipFactory, StoreFactory

URL = "http://127.0.0.1:9/hooks"


@pytest.fixture(autouse=True)
def loopback_allowed(settings):
    # Only staff-allowed ranges let a loopback URL through the SSRF guard; nothing is sent here.
    settings.WEBHOOK_ALLOWED_TARGET_CIDRS = ["127.0.0.0/8"]


def create(api, **body):
    return api.post("/api/v1/webhooks/", {"url": URL, **body}, format="json")


def test_an_owner_adds_an_endpoint_and_sees_its_secret_once(api):
    response = create(api, description="billing", event_types=["store.ready", "store.failed"])
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["secret"].startswith("whsec_") and body["enabled"] is True
    assert body["event_types"] == ["store.failed", "store.ready"]
    assert response["Cache-Control"] == "no-store"
    listed = api.get("/api/v1/webhooks/").json()["results"]
    assert [item["url"] for item in listed] == [URL] and "secret" not in listed[0]
    assert "secret" not in api.get(f"/api/v1/webhooks/{body['id']}/").json()


def test_rotating_returns_a_new_secret_and_keeps_the_old_one_valid_for_a_while(api):
    created = create(api).json()
    rotated = api.post(f"/api/v1/webhooks/{created['id']}/rotate-secret/")
    assert rotated.status_code == 200
    assert rotated.json()["secret"].startswith("whsec_") and rotated.json()["secret"] != created["secret"]
    assert rotated.json()["previous_secret_valid_until"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "http://10.1.2.3/hook"}, "url"),
        ({"url": "http://169.254.169.254/"}, "url"),
        ({"url": URL, "event_types": ["store.exploded"]}, "event_types"),
        ({"url": URL, "secret": "whsec_mine"}, "secret"),
    ],
)
def test_bad_input_is_a_400_naming_the_field_and_nothing_is_stored(api, body, field):
    response = api.post("/api/v1/webhooks/", body, format="json")
    assert response.status_code == 400
    assert any(name.split(".")[0] == field for name in response.json()["error"]["fields"])
    assert not WebhookEndpoint.objects.exists()


def test_another_tenants_endpoints_are_404_and_never_listed(api, other_api):
    created = create(api).json()
    assert other_api.get("/api/v1/webhooks/").json()["results"] == []
    for method, path in [
        ("get", f"/api/v1/webhooks/{created['id']}/"),
        ("get", f"/api/v1/webhooks/{created['id']}/deliveries/"),
        ("post", f"/api/v1/webhooks/{created['id']}/rotate-secret/"),
        ("post", f"/api/v1/webhooks/{created['id']}/enable/"),
        ("post", f"/api/v1/webhooks/{created['id']}/deliveries/1/resend/"),
        ("delete", f"/api/v1/webhooks/{created['id']}/"),
    ]:
        assert getattr(other_api, method)(path).status_code == 404
    assert WebhookEndpoint.objects.filter(pk=created["id"]).exists()


def test_members_and_read_only_tokens_may_read_but_not_change(tenant, api):
    created = create(api).json()
    member = MembershipFactory(tenant=tenant, role="member").user
    owner = tenant.memberships.get(role="owner").user
    # A member's browser session (members cannot mint tokens) and an owner's read-only token.
    session = APIClient()
    session.force_login(member)
    for client in (session, client_with_token(token_for(owner, read_only=True))):
        assert client.get("/api/v1/webhooks/").status_code == 200
        assert create(client).status_code == 403
        assert client.delete(f"/api/v1/webhooks/{created['id']}/").status_code == 403


def test_the_delivery_log_shows_attempts_and_a_finished_delivery_can_be_resent(api, tenant):
    endpoint_id = create(api, event_types=["store.failed"]).json()["id"]
    StoreFactory(tenant=tenant, failed=True)
    log = api.get(f"/api/v1/webhooks/{endpoint_id}/deliveries/").json()["results"]
    assert [(item["event_type"], item["status"], item["attempts"]) for item in log] == [
        ("store.failed", "pending", 0)
    ]
    assert log[0]["webhook_id"].startswith("msg_") and log[0]["next_attempt_at"]
    resend = f"/api/v1/webhooks/{endpoint_id}/deliveries/{log[0]['id']}/resend/"
    assert api.post(resend).status_code == 409  # still being retried
    WebhookDelivery.objects.filter(pk=log[0]["id"]).update(status=WebhookDeliveryStatus.FAILED)
    response = api.post(resend)
    assert response.status_code == 202 and response.json()["status"] == "pending"
    assert response.json()["webhook_id"] == log[0]["webhook_id"]
    assert api.post(f"/api/v1/webhooks/{endpoint_id}/deliveries/999999/resend/").status_code == 404


def test_deleting_an_endpoint_removes_it(api):
    endpoint_id = create(api).json()["id"]
    assert api.delete(f"/api/v1/webhooks/{endpoint_id}/").status_code == 204
    assert api.get(f"/api/v1/webhooks/{endpoint_id}/").status_code == 404
