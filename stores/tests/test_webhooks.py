"""Outbound webhooks end to end over loopback: a real HTTP receiver (testkit.webhooks) checks every
signature with its own implementation of the Standard Webhooks spec, fails the first attempts and
counts what arrives."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from stores.choices import StoreStatus, WebhookDeliveryStatus
from stores.models import WebhookDelivery, WebhookEndpoint, WebhookMessage
from stores.tasks import deliver_webhook
from stores.tests.factories import StoreFactory
from stores.transitions import store_transition
from stores.webhooks import (
    AttemptOutcome,
    WebhookDeliveryNotResendable,
    WebhookEndpointInvalid,
    webhook_deliveries_due,
    webhook_delivery_attempt,
    webhook_delivery_resend,
    webhook_endpoint_create,
    webhook_endpoint_enable,
    webhook_endpoint_rotate_secret,
    webhook_retry_delay,
)
from testkit.webhooks import Receiver


@pytest.fixture(autouse=True)
def loopback_allowed(settings):
    # The SSRF guard refuses loopback; these tests' receiver lives there, so staff "allow" it here,
    # explicitly, as an operator would for a receiver on a private network.
    settings.WEBHOOK_ALLOWED_TARGET_CIDRS = ["127.0.0.0/8"]
    settings.WEBHOOK_READ_TIMEOUT_SECONDS = 2.0


@pytest.fixture
def receiver():
    server = Receiver(fail_first=2).start()
    yield server
    server.stop()


def endpoint_for(tenant, receiver, **kwargs):
    endpoint, secret = webhook_endpoint_create(tenant=tenant, url=receiver.url, **kwargs)
    receiver.secrets.append(secret)
    return endpoint, secret


def ready_store(tenant):
    """A store walked to ready through the status writer (requested, provisioning, ready)."""
    return StoreFactory(tenant=tenant, ready=True)


def deliveries_of(endpoint, event_type):
    return WebhookDelivery.objects.filter(endpoint=endpoint, message__event_type=event_type)


def test_a_failing_receiver_gets_the_event_retried_with_one_id_and_valid_signatures(
    tenant, receiver, django_capture_on_commit_callbacks
):
    endpoint, secret = endpoint_for(tenant, receiver)
    assert secret.startswith("whsec_") and secret not in endpoint.secret_sealed
    with django_capture_on_commit_callbacks() as dispatched:
        store = ready_store(tenant)
    # store.requested and store.ready, each dispatched after its commit (provisioning is not an event;
    # the provision run's end also hands its helm slot on, which is not a webhook).
    assert sum("_webhook_message_record" in callback.__qualname__ for callback in dispatched) == 2
    delivery = deliveries_of(endpoint, "store.ready").get()

    now = timezone.now()
    first = webhook_delivery_attempt(delivery_id=delivery.pk, now=now)
    assert first.outcome is AttemptOutcome.RETRY_SCHEDULED and first.status_code == 500
    # Not due yet: an early or duplicate task message sends nothing.
    assert webhook_delivery_attempt(delivery_id=delivery.pk, now=now).outcome is AttemptOutcome.NOT_STARTABLE
    second = webhook_delivery_attempt(delivery_id=delivery.pk, now=first.next_attempt_at)
    assert second.outcome is AttemptOutcome.RETRY_SCHEDULED
    assert (second.next_attempt_at - first.next_attempt_at) > (first.next_attempt_at - now)  # backs off
    # The Celery task is the same attempt, through its thin interface.
    with django_capture_on_commit_callbacks(execute=False):
        assert webhook_delivery_attempt(delivery_id=delivery.pk, now=second.next_attempt_at).outcome is (
            AttemptOutcome.DELIVERED
        )
    assert deliver_webhook(delivery.pk) == AttemptOutcome.NOT_STARTABLE.value  # already delivered

    ready_requests = [r for r in receiver.requests if json.loads(r["body"])["type"] == "store.ready"]
    assert len(ready_requests) == 3
    assert all(r["valid"][secret] for r in ready_requests)
    assert len({r["id"] for r in ready_requests}) == 1  # one stable id: the receiver can dedupe
    assert len({r["body"] for r in ready_requests}) == 1
    assert ready_requests[0]["path"] == "/hooks/in?source=test"
    assert ready_requests[0]["host"] == f"127.0.0.1:{receiver.server.server_port}"
    payload = json.loads(ready_requests[0]["body"])
    assert payload["data"]["store"]["name"] == store.name
    assert payload["data"]["store"]["status"] == StoreStatus.READY

    delivery.refresh_from_db()
    assert delivery.status == WebhookDeliveryStatus.SUCCEEDED and delivery.attempts == 3
    assert [a.status_code for a in delivery.attempt_log.order_by("number")] == [500, 500, 204]
    assert all(a.duration_ms >= 0 for a in delivery.attempt_log.all())
    endpoint.refresh_from_db()
    assert endpoint.failing_since is None and endpoint.last_success_at is not None

    # A manual resend carries the same id again; the receiver sees a duplicate it can drop.
    with django_capture_on_commit_callbacks() as resent:
        webhook_delivery_resend(delivery=delivery)
    assert len(resent) == 1
    assert deliver_webhook(delivery.pk) == AttemptOutcome.DELIVERED.value
    assert [r["id"] for r in receiver.requests].count(ready_requests[0]["id"]) == 4
    assert WebhookDelivery.objects.get(pk=delivery.pk).attempt_log.count() == 4


def test_only_subscribed_events_of_the_own_tenant_reach_an_endpoint(tenant, other_tenant, receiver):
    endpoint, _ = endpoint_for(tenant, receiver, event_types=["store.failed"])
    other, _ = endpoint_for(other_tenant, receiver)
    failed = StoreFactory(tenant=tenant, failed=True)
    StoreFactory(tenant=tenant, ready=True)
    assert list(
        WebhookDelivery.objects.filter(endpoint=endpoint).values_list("message__event_type", flat=True)
    ) == ["store.failed"]
    assert WebhookMessage.objects.get(deliveries__endpoint=endpoint).store == failed
    assert not WebhookDelivery.objects.filter(endpoint=other).exists()


def test_a_status_move_that_loses_the_race_announces_nothing(tenant, receiver):
    endpoint, _ = endpoint_for(tenant, receiver)
    store = ready_store(tenant)
    count = WebhookDelivery.objects.filter(endpoint=endpoint).count()
    assert not store_transition(store_id=store.pk, to=StoreStatus.DELETED)  # ready -> deleted is not allowed
    assert WebhookDelivery.objects.filter(endpoint=endpoint).count() == count


def test_redirects_are_not_followed_and_count_as_failures(tenant, receiver):
    receiver.fail_first = 0
    receiver.answer = (302, {"Location": "http://127.0.0.1:1/elsewhere"})
    endpoint, _ = endpoint_for(tenant, receiver)
    ready_store(tenant)
    delivery = deliveries_of(endpoint, "store.ready").get()
    result = webhook_delivery_attempt(delivery_id=delivery.pk)
    assert result.outcome is AttemptOutcome.RETRY_SCHEDULED and result.status_code == 302
    delivery.refresh_from_db()
    assert "redirects are not followed" in delivery.last_error
    assert [r["path"] for r in receiver.requests].count("/elsewhere") == 0


def test_a_receiver_that_never_answers_hits_the_read_timeout(tenant, receiver, settings):
    settings.WEBHOOK_READ_TIMEOUT_SECONDS = 0.3
    receiver.hold.clear()
    endpoint, _ = endpoint_for(tenant, receiver, event_types=["store.requested"])
    StoreFactory(tenant=tenant)
    delivery = deliveries_of(endpoint, "store.requested").get()
    result = webhook_delivery_attempt(delivery_id=delivery.pk)
    assert result.outcome is AttemptOutcome.RETRY_SCHEDULED and result.status_code is None
    assert WebhookDelivery.objects.get(pk=delivery.pk).last_error == "No answer within 0.3 s."


def test_a_target_that_turns_inward_after_saving_is_refused_at_send_time(tenant, receiver, settings):
    endpoint, _ = endpoint_for(tenant, receiver)
    ready_store(tenant)
    settings.WEBHOOK_ALLOWED_TARGET_CIDRS = []  # the same address is now refused (as after a DNS change)
    delivery = deliveries_of(endpoint, "store.ready").get()
    assert webhook_delivery_attempt(delivery_id=delivery.pk).outcome is AttemptOutcome.RETRY_SCHEDULED
    assert "loopback" in WebhookDelivery.objects.get(pk=delivery.pk).last_error
    assert receiver.requests == []


def test_retries_stop_after_the_window_and_the_delivery_says_why(tenant, receiver):
    receiver.fail_first = 1000
    endpoint, _ = endpoint_for(tenant, receiver, event_types=["store.ready"])
    ready_store(tenant)
    delivery = deliveries_of(endpoint, "store.ready").get()
    now = timezone.now()
    outcomes = []
    while (result := webhook_delivery_attempt(delivery_id=delivery.pk, now=now)).outcome is (
        AttemptOutcome.RETRY_SCHEDULED
    ):
        outcomes.append(result.outcome)
        now = result.next_attempt_at
    assert result.outcome is AttemptOutcome.GAVE_UP
    delivery.refresh_from_db()
    assert delivery.status == WebhookDeliveryStatus.FAILED
    assert delivery.last_error.startswith(f"Gave up after {delivery.attempts} attempts")
    assert 6 <= delivery.attempts <= 14 and len(receiver.requests) == delivery.attempts
    assert now <= delivery.deadline_at
    assert not webhook_deliveries_due(now=now + timedelta(days=2)).filter(pk=delivery.pk).exists()


def test_backoff_grows_exponentially_with_jitter_and_is_capped(settings):
    delays = [webhook_retry_delay(attempt) for attempt in range(1, 12)]
    assert 4.0 <= delays[0] <= 6.0 and 16.0 <= delays[1] <= 24.0
    assert all(later > earlier for earlier, later in zip(delays[:6], delays[1:7], strict=True))
    assert max(delays) <= settings.WEBHOOK_RETRY_MAX_DELAY_SECONDS * 1.2
    assert len({round(webhook_retry_delay(3), 6) for _ in range(10)}) > 1  # jittered


def test_an_endpoint_failing_for_three_days_is_disabled_with_a_notice(tenant, receiver):
    receiver.fail_first = 1000
    endpoint, _ = endpoint_for(tenant, receiver)
    store = ready_store(tenant)
    pending = list(WebhookDelivery.objects.filter(endpoint=endpoint))
    now = timezone.now()
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=now - timedelta(days=3, minutes=1))
    assert webhook_delivery_attempt(delivery_id=pending[0].pk, now=now).outcome is AttemptOutcome.GAVE_UP
    endpoint.refresh_from_db()
    assert endpoint.disabled_at is not None and "failed for 3 days" in endpoint.disabled_reason
    assert set(WebhookDelivery.objects.filter(endpoint=endpoint).values_list("status", flat=True)) == {
        WebhookDeliveryStatus.FAILED
    }
    # Disabled: new events are not queued for it, and nothing can be resent until it is enabled.
    store_transition(store_id=store.pk, to=StoreStatus.DELETING)
    assert not deliveries_of(endpoint, "store.deleting").exists()
    with pytest.raises(WebhookDeliveryNotResendable, match="enable it"):
        webhook_delivery_resend(delivery=pending[0])
    webhook_endpoint_enable(endpoint=endpoint)
    receiver.fail_first = 0
    webhook_delivery_resend(delivery=pending[0])
    assert webhook_delivery_attempt(delivery_id=pending[0].pk).outcome is AttemptOutcome.DELIVERED


def test_a_rotated_secret_signs_beside_the_old_one_for_the_grace_period(tenant, receiver, settings):
    receiver.fail_first = 0
    endpoint, old = endpoint_for(tenant, receiver, event_types=["store.requested"])
    new = webhook_endpoint_rotate_secret(endpoint=endpoint)
    receiver.secrets.append(new)
    assert new != old
    StoreFactory(tenant=tenant)
    webhook_delivery_attempt(delivery_id=deliveries_of(endpoint, "store.requested").get().pk)
    assert receiver.requests[-1]["valid"] == {old: True, new: True}

    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(previous_secret_expires_at=timezone.now())
    StoreFactory(tenant=tenant)
    latest = deliveries_of(endpoint, "store.requested").order_by("-id").first()
    webhook_delivery_attempt(delivery_id=latest.pk)
    assert receiver.requests[-1]["valid"] == {old: False, new: True}


@pytest.mark.parametrize(
    ("url", "event_types", "field"),
    [
        ("http://10.0.0.5/hook", None, "url"),
        ("not a url", None, "url"),
        ("", None, "url"),
        ("http://127.0.0.1:9/hook", ["store.exploded"], "event_types"),
        ("http://127.0.0.1:9/hook", "store.ready", "event_types"),
    ],
)
def test_bad_endpoints_are_refused_and_nothing_is_stored(tenant, url, event_types, field):
    with pytest.raises(WebhookEndpointInvalid) as refused:
        webhook_endpoint_create(tenant=tenant, url=url, event_types=event_types)
    assert field in refused.value.fields
    assert not WebhookEndpoint.objects.exists()


def test_a_domain_turning_active_or_failed_is_announced_and_its_steps_are_not(
    tenant, receiver, django_capture_on_commit_callbacks
):
    from stores.choices import DomainStatus
    from stores.domain_transitions import domain_transition
    from stores.domains import domain_add

    endpoint, secret = endpoint_for(tenant, receiver, event_types=["domain.active", "domain.failed"])
    store = ready_store(tenant)
    domain = domain_add(store=store, domain="shop.example.com")
    expiry = timezone.now() + timedelta(days=90)
    with django_capture_on_commit_callbacks() as dispatched:
        domain_transition(domain_id=domain.pk, to=DomainStatus.VERIFIED)
        domain_transition(domain_id=domain.pk, to=DomainStatus.ISSUING)
        domain_transition(
            domain_id=domain.pk, to=DomainStatus.ACTIVE, fields={"certificate_not_after": expiry}
        )
    assert len(dispatched) == 1  # verified and issuing are steps, not partner events
    delivery = deliveries_of(endpoint, "domain.active").get()
    receiver.fail_first = 0
    assert webhook_delivery_attempt(delivery_id=delivery.pk).outcome is AttemptOutcome.DELIVERED
    [request] = [r for r in receiver.requests if json.loads(r["body"])["type"] == "domain.active"]
    assert request["valid"][secret]
    data = json.loads(request["body"])["data"]
    assert data["store"]["name"] == store.name
    assert data["domain"]["name"] == "shop.example.com" and data["domain"]["status"] == "active"
    assert data["domain"]["certificate_expires_at"] == expiry.isoformat().replace("+00:00", "Z")

    assert domain_transition(
        domain_id=domain.pk, to=DomainStatus.FAILED, reason="The certificate could not be renewed."
    )
    failed = WebhookMessage.objects.get(event_type="domain.failed")
    assert (
        json.loads(failed.body)["data"]["domain"]["status_reason"] == "The certificate could not be renewed."
    )
    assert not domain_transition(domain_id=domain.pk, to=DomainStatus.ACTIVE)  # failed -> active: refused
    assert WebhookMessage.objects.filter(event_type="domain.active").count() == 1


def test_a_backup_completing_passing_its_drill_or_failing_is_announced(tenant, receiver):
    from stores.backup_transitions import backup_transition
    from stores.choices import BackupStatus
    from stores.models import StoreBackup

    endpoint, _ = endpoint_for(
        tenant, receiver, event_types=["backup.completed", "backup.verified", "backup.failed"]
    )
    store = ready_store(tenant)

    def backup(key):
        return StoreBackup.objects.create(
            store=store, tenant=tenant, engine=store.engine, kind="manual", object_key=key
        )

    good = backup("good")
    backup_transition(backup_id=good.pk, to=BackupStatus.RUNNING)
    assert not WebhookMessage.objects.filter(event_type__startswith="backup.").exists()  # a step
    backup_transition(
        backup_id=good.pk,
        to=BackupStatus.COMPLETED,
        fields={"size_bytes": 2048, "checksum": "ab" * 32, "finished_at": timezone.now()},
    )
    backup_transition(backup_id=good.pk, to=BackupStatus.VERIFIED, reason="The drill read 12 orders.")
    bad = backup("bad")  # one backup in flight per store: the next starts after the first ended
    backup_transition(
        backup_id=bad.pk,
        to=BackupStatus.FAILED,
        fields={"failure_reason": "The backup bucket did not answer."},
    )

    messages = {m.event_type: json.loads(m.body)["data"] for m in WebhookMessage.objects.all()}
    assert set(messages) >= {"backup.completed", "backup.verified", "backup.failed"}
    completed = messages["backup.completed"]
    assert completed["store"]["name"] == store.name
    assert completed["backup"]["id"] == good.pk and completed["backup"]["size_bytes"] == 2048
    assert completed["backup"]["checksum"] == "ab" * 32 and completed["backup"]["finished_at"].endswith("Z")
    assert messages["backup.verified"]["backup"]["reason"] == "The drill read 12 orders."
    assert messages["backup.failed"]["backup"]["reason"] == "The backup bucket did not answer."
    assert (
        WebhookDelivery.objects.filter(endpoint=endpoint, message__event_type__startswith="backup.").count()
        == 3
    )
