"""Idempotency-Key: replay within 24 h, 422 on a different body, scoped per tenant, purged lazily."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from provisioning.models import ProvisioningRun
from stores.api.idempotency import (
    IdempotencyKeyInProgress,
    idempotency_key_claim,
    request_fingerprint,
)
from stores.models import IdempotencyKey, Store
from stores.tests.factories import StoreFactory

pytestmark = pytest.mark.django_db

STORES = "/api/v1/stores/"
BODY = {"name": "keyed", "engine": "woocommerce"}


def _post(client, body, key):
    return client.post(STORES, body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def test_the_same_key_and_body_replays_the_first_response(api):
    first = _post(api, BODY, "key-1")
    second = _post(api, {"engine": "woocommerce", "name": "keyed"}, "key-1")  # key order does not matter

    assert first.status_code == second.status_code == 202  # the replay, not the live 200
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first
    assert Store.objects.count() == 1 and ProvisioningRun.objects.count() == 1


def test_the_same_key_with_a_different_body_is_a_422(api):
    assert _post(api, BODY, "key-2").status_code == 202

    response = _post(api, {"name": "other-name", "engine": "woocommerce"}, "key-2")

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "idempotency_key_reused" and "different request" in error["message"]
    assert not Store.objects.filter(name="other-name").exists()


def test_a_key_is_scoped_to_its_tenant(api, other_api):
    assert _post(api, BODY, "shared-key").status_code == 202
    response = _post(other_api, {"name": "theirs-keyed", "engine": "medusa"}, "shared-key")
    assert response.status_code == 202 and response.json()["name"] == "theirs-keyed"


def test_a_failed_request_does_not_consume_its_key(api):
    bad = _post(api, {"name": "Bad Name", "engine": "woocommerce"}, "key-3")
    assert bad.status_code == 400
    assert not IdempotencyKey.objects.exists()

    good = _post(api, BODY, "key-3")
    assert good.status_code == 202 and "Idempotent-Replayed" not in good


def test_an_expired_key_is_purged_and_can_be_used_again(api, tenant):
    assert _post(api, BODY, "old-key").status_code == 202
    IdempotencyKey.objects.update(created_at=timezone.now() - timedelta(hours=24, minutes=1))

    response = _post(api, {"name": "fresh", "engine": "woocommerce"}, "old-key")

    assert response.status_code == 202 and response.json()["name"] == "fresh"
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["old-key"]
    assert IdempotencyKey.objects.get().response_body["name"] == "fresh"


def test_a_key_still_in_progress_is_a_409(api, tenant):
    fingerprint = request_fingerprint(method="POST", path=STORES, body=BODY)
    idempotency_key_claim(tenant=tenant, key="busy", fingerprint=fingerprint)
    with pytest.raises(IdempotencyKeyInProgress):
        idempotency_key_claim(tenant=tenant, key="busy", fingerprint=fingerprint)

    response = _post(api, BODY, "busy")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_key_in_progress"
    assert not Store.objects.exists()


def test_an_abandoned_claim_is_taken_over(api, tenant):
    fingerprint = request_fingerprint(method="POST", path=STORES, body=BODY)
    idempotency_key_claim(tenant=tenant, key="crashed", fingerprint=fingerprint)
    IdempotencyKey.objects.update(created_at=timezone.now() - timedelta(minutes=5))

    assert _post(api, BODY, "crashed").status_code == 202


@pytest.mark.parametrize("key", ["", "x" * 256, "ключ"])
def test_an_unusable_key_is_a_400(api, key):
    response = api.post(STORES, BODY, format="json", HTTP_IDEMPOTENCY_KEY=key.encode().decode("latin-1"))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_idempotency_key"


def test_retry_honours_the_key_too(api, tenant):
    StoreFactory(tenant=tenant, name="retried", status="failed")

    first = api.post(f"{STORES}retried/retry/", HTTP_IDEMPOTENCY_KEY="retry-1")
    second = api.post(f"{STORES}retried/retry/", HTTP_IDEMPOTENCY_KEY="retry-1")

    assert first.status_code == second.status_code == 202
    assert second["Idempotent-Replayed"] == "true"
    assert ProvisioningRun.objects.filter(store__name="retried").count() == 2  # one original, one retry
