"""Webhooks through a real Celery worker: status change -> message in the same transaction -> broker ->
worker task -> signed POST to a loopback receiver that fails the first attempts -> retries by
countdown until delivered."""

from __future__ import annotations

import json

import pytest

from stores.choices import StoreStatus, WebhookDeliveryStatus
from stores.lifecycle import store_create
from stores.models import WebhookDelivery
from stores.webhooks import webhook_endpoint_create
from testkit.helm import HELM_BINARIES
from testkit.waiting import wait_for
from testkit.webhooks import Receiver

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def receiver():
    server = Receiver(fail_first=2).start()
    yield server
    server.stop()


def test_store_events_reach_a_failing_receiver_through_a_real_worker(
    kube_api, tenant, start_worker, receiver, settings
):
    # Loopback is refused unless staff allow it; the worker process gets the same explicit allowance,
    # and short retry delays so its countdown retries come within the test.
    settings.WEBHOOK_ALLOWED_TARGET_CIDRS = ["127.0.0.0/8"]
    start_worker(
        kube_api,
        HELM_BINARIES["helm4"],
        WEBHOOK_ALLOWED_TARGET_CIDRS="127.0.0.0/8",
        WEBHOOK_RETRY_BASE_SECONDS="0.2",
    )
    endpoint, secret = webhook_endpoint_create(tenant=tenant, url=receiver.url)
    receiver.secrets.append(secret)
    store, _ = store_create(tenant=tenant, name="hooked", engine="woocommerce")

    def delivered() -> bool:
        statuses = list(WebhookDelivery.objects.filter(endpoint=endpoint).values_list("status", flat=True))
        return len(statuses) == 2 and set(statuses) == {WebhookDeliveryStatus.SUCCEEDED}

    wait_for(delivered, timeout=90, what="store.requested and store.ready delivered")
    types = {json.loads(request["body"])["type"] for request in receiver.requests}
    assert types == {"store.requested", "store.ready"}
    assert all(request["valid"][secret] for request in receiver.requests)
    # Two failures were retried: more requests than events, but only two ids to dedupe on.
    assert len(receiver.requests) == 4 and len(receiver.unique_ids) == 2
    attempts = sum(WebhookDelivery.objects.filter(endpoint=endpoint).values_list("attempts", flat=True))
    assert attempts == len(receiver.requests)
    ready = next(r for r in receiver.requests if json.loads(r["body"])["type"] == "store.ready")
    assert json.loads(ready["body"])["data"]["store"]["status"] == StoreStatus.READY
    assert json.loads(ready["body"])["data"]["store"]["name"] == store.name
