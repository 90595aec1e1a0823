"""Outbound webhooks: endpoints, the messages store status changes produce, and their delivery.

Messages and their deliveries are written in the same transaction as the status change they announce
(stores.transitions calls `webhooks_store_status_changed`), so an event is never lost to a crash or a
broker outage between the two; the broker only carries delivery ids, after commit. Delivery is
at-least-once: a delivery is claimed for one attempt at a time, and an attempt whose worker died is
picked up again by the periodic sweep once its claim expires. Receivers dedupe on `webhook-id`.
"""

from __future__ import annotations

import json
import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from platform_site.errors import ApplicationError
from provisioning.credential_box import seal, unseal
from provisioning.redaction import redact
from stores.choices import (
    WEBHOOK_EVENT_FOR_BACKUP_STATUS,
    WEBHOOK_EVENT_FOR_DOMAIN_STATUS,
    WEBHOOK_EVENT_FOR_MOVE,
    WEBHOOK_EVENT_FOR_STATUS,
    WebhookDeliveryStatus,
    WebhookEventType,
)
from stores.models import (
    Store,
    StoreBackup,
    StoreDomain,
    Tenant,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookMessage,
)
from stores.webhook_signing import webhook_headers, webhook_secret_generate
from stores.webhook_targets import (
    PostResult,
    WebhookTargetRefused,
    webhook_post,
    webhook_target_resolve,
)

logger = logging.getLogger(__name__)

DELIVER_TASK = "stores.tasks.deliver_webhook"
# The delivery task's hard limit: one POST's connect and read timeouts and a margin for the database.
DELIVER_TIME_LIMIT_SECONDS = 60


class WebhookEndpointInvalid(ApplicationError):
    code = "invalid_webhook_endpoint"
    http_status = 400


class WebhookLimitReached(ApplicationError):
    code = "webhook_limit"
    http_status = 409


class WebhookDeliveryNotResendable(ApplicationError):
    code = "invalid_state"
    http_status = 409


# --- Endpoints --------------------------------------------------------------------------------------


def _clean_event_types(event_types: Any) -> list[str]:
    if event_types is None:
        return []
    if not isinstance(event_types, list | tuple) or not all(isinstance(item, str) for item in event_types):
        raise WebhookEndpointInvalid(
            "event_types must be a list of event names.", fields={"event_types": ["Expected a list."]}
        )
    unknown = sorted(set(event_types) - set(WebhookEventType.values))
    if unknown:
        accepted = ", ".join(WebhookEventType.values)
        raise WebhookEndpointInvalid(
            f"Unknown event types: {', '.join(unknown)}. Known: {accepted}.",
            fields={"event_types": [f"Unknown: {', '.join(unknown)}. Known: {accepted}."]},
        )
    return sorted(set(event_types))


def _check_url(url: Any) -> str:
    if not isinstance(url, str) or not url.strip():
        raise WebhookEndpointInvalid("A URL is required.", fields={"url": ["A URL is required."]})
    url = url.strip()
    if len(url) > WebhookEndpoint._meta.get_field("url").max_length:  # type: ignore[operator]
        raise WebhookEndpointInvalid("The URL is too long.", fields={"url": ["At most 2000 characters."]})
    try:
        webhook_target_resolve(url)
    except WebhookTargetRefused as exc:
        raise WebhookEndpointInvalid(exc.message, fields={"url": [exc.message]}) from exc
    return url


def webhook_endpoint_create(
    *, tenant: Tenant, url: Any, description: str = "", event_types: Any = None, actor: Any = None
) -> tuple[WebhookEndpoint, str]:
    """Add an endpoint; returns it and its signing secret, which is never shown again."""
    url = _check_url(url)
    types = _clean_event_types(event_types)
    secret = webhook_secret_generate()
    with transaction.atomic():
        # The tenant row lock serialises this tenant's creates, so the limit cannot be overrun.
        Tenant.objects.select_for_update().filter(pk=tenant.pk).first()
        if WebhookEndpoint.objects.filter(tenant=tenant).count() >= settings.WEBHOOK_MAX_ENDPOINTS_PER_TENANT:
            raise WebhookLimitReached(
                f"An organisation can have at most {settings.WEBHOOK_MAX_ENDPOINTS_PER_TENANT} webhook "
                "endpoints; delete one first."
            )
        endpoint = WebhookEndpoint(
            tenant=tenant,
            url=url,
            description=(description or "").strip(),
            event_types=types,
            secret_sealed=seal(secret),
            created_by=actor if getattr(actor, "pk", None) else None,
        )
        endpoint.full_clean()
        endpoint.save()
    return endpoint, secret


def webhook_endpoint_rotate_secret(*, endpoint: WebhookEndpoint) -> str:
    """A new signing secret, returned once; the old one keeps signing for the grace period."""
    secret = webhook_secret_generate()
    with transaction.atomic():
        current = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        current.previous_secret_sealed = current.secret_sealed
        current.previous_secret_expires_at = timezone.now() + timedelta(
            hours=settings.WEBHOOK_SECRET_ROTATION_GRACE_HOURS
        )
        current.secret_sealed = seal(secret)
        current.save(update_fields=["secret_sealed", "previous_secret_sealed", "previous_secret_expires_at"])
    return secret


def webhook_endpoint_enable(*, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    """Turn a disabled endpoint back on; its failure clock starts afresh. New events reach it again."""
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        disabled_at=None, disabled_reason="", failing_since=None
    )
    return WebhookEndpoint.objects.get(pk=endpoint.pk)


def webhook_endpoint_delete(*, endpoint: WebhookEndpoint) -> None:
    """Remove an endpoint with its delivery log; pending deliveries to it stop."""
    WebhookEndpoint.objects.filter(pk=endpoint.pk).delete()


def _signing_secrets(endpoint: WebhookEndpoint, now: datetime) -> list[str]:
    found = [unseal(endpoint.secret_sealed)]
    if (
        endpoint.previous_secret_sealed
        and endpoint.previous_secret_expires_at
        and now < endpoint.previous_secret_expires_at
    ):
        found.append(unseal(endpoint.previous_secret_sealed))
    return found


# --- Events -----------------------------------------------------------------------------------------


def _store_payload(store: Store) -> dict[str, Any]:
    return {
        "name": store.name,
        "engine": store.engine,
        "status": store.status,
        "status_reason": store.status_reason,
        "url": store.public_url,
        "created_at": store.created_at.isoformat().replace("+00:00", "Z"),
    }


def webhooks_store_status_changed(
    *, store_id: int, status: str, old_status: str = ""
) -> WebhookMessage | None:
    """Record the webhook message for a store's new status and a delivery per subscribed endpoint.

    Called by the status writer inside its transaction; the deliveries are sent after commit. None when
    the status is not a webhook event or no enabled endpoint of the tenant wants it.
    """
    event_type = WEBHOOK_EVENT_FOR_MOVE.get((old_status, status)) or WEBHOOK_EVENT_FOR_STATUS.get(status)
    if event_type is None:
        return None
    store = Store.objects.filter(pk=store_id).first()
    if store is None:
        return None
    return _webhook_message_record(store, event_type, {"store": _store_payload(store)})


def webhooks_store_created(*, store: Store) -> WebhookMessage | None:
    """Like webhooks_store_status_changed for a new store's first status, with the row the creating
    transaction already holds (a create is the web path's hottest write: no second read of it)."""
    event_type = WEBHOOK_EVENT_FOR_STATUS.get(store.status)
    if event_type is None:
        return None
    return _webhook_message_record(store, event_type, {"store": _store_payload(store)})


def webhooks_domain_status_changed(*, domain_id: int, status: str) -> WebhookMessage | None:
    """Like webhooks_store_status_changed, for a custom domain turning active or failed (called by the
    domain's status writer inside its transaction)."""
    event_type = WEBHOOK_EVENT_FOR_DOMAIN_STATUS.get(status)
    if event_type is None:
        return None
    domain = StoreDomain.objects.select_related("store").filter(pk=domain_id).first()
    if domain is None:
        return None
    data = {
        "store": _store_payload(domain.store),
        "domain": {
            "name": domain.domain,
            "status": domain.status,
            "status_reason": domain.status_reason,
            "certificate_expires_at": _when(domain.certificate_not_after),
        },
    }
    return _webhook_message_record(domain.store, event_type, data)


def _when(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def webhooks_backup_status_changed(*, backup_id: int, status: str) -> WebhookMessage | None:
    """Like webhooks_store_status_changed, for a backup completing, passing its drill or failing (called
    by the backup's status writer inside its transaction)."""
    event_type = WEBHOOK_EVENT_FOR_BACKUP_STATUS.get(status)
    if event_type is None:
        return None
    backup = StoreBackup.objects.select_related("store").filter(pk=backup_id).first()
    if backup is None:
        return None
    data = {
        "store": _store_payload(backup.store),
        "backup": {
            "id": backup.pk,
            "kind": backup.kind,
            "status": backup.status,
            "reason": backup.failure_reason or backup.status_reason,
            "size_bytes": backup.size_bytes,
            "checksum": backup.checksum,
            "engine_version": backup.engine_version,
            "started_at": _when(backup.started_at),
            "finished_at": _when(backup.finished_at),
            "expires_at": _when(backup.expires_at),
        },
    }
    return _webhook_message_record(backup.store, event_type, data)


def _webhook_message_record(
    store: Store, event_type: WebhookEventType, data: dict[str, Any]
) -> WebhookMessage | None:
    """One message with a stable id and a delivery per enabled endpoint of the store's tenant that
    subscribes to `event_type`, dispatched after the caller's transaction commits."""
    endpoints = [
        endpoint
        for endpoint in WebhookEndpoint.objects.filter(tenant_id=store.tenant_id, disabled_at__isnull=True)
        if endpoint.subscribes_to(event_type)
    ]
    if not endpoints:
        return None
    now = timezone.now()
    msg_id = f"msg_{uuid.uuid4().hex}"
    body = {
        "type": str(event_type),
        "timestamp": now.isoformat().replace("+00:00", "Z"),
        "data": data,
    }
    message = WebhookMessage.objects.create(
        tenant_id=store.tenant_id,
        store=store,
        event_type=event_type,
        msg_id=msg_id,
        body=json.dumps(body, separators=(",", ":"), sort_keys=True),
    )
    deadline = now + timedelta(hours=settings.WEBHOOK_RETRY_WINDOW_HOURS)
    deliveries = WebhookDelivery.objects.bulk_create(
        WebhookDelivery(endpoint=endpoint, message=message, next_attempt_at=now, deadline_at=deadline)
        for endpoint in endpoints
    )
    ids = [delivery.pk for delivery in deliveries]
    transaction.on_commit(lambda: [webhook_delivery_dispatch(delivery_id=pk) for pk in ids])
    return message


def webhook_delivery_dispatch(*, delivery_id: int, countdown: float | None = None) -> bool:
    """Send a delivery id to the broker. A broker outage is logged: the periodic sweep sends it later."""
    from platform_site.celery import app

    try:
        app.send_task(DELIVER_TASK, args=[delivery_id], countdown=countdown)
    except Exception as exc:  # kombu raises many connection error types; all mean "not sent"
        logger.warning(
            "webhook delivery %s not dispatched, the sweep will: %s", delivery_id, redact(str(exc))
        )
        return False
    return True


# --- Delivery ---------------------------------------------------------------------------------------


def webhook_retry_delay(attempt: int) -> float:
    """Seconds before the attempt after attempt number `attempt` (1-based) failed: exponential, capped,
    with +-20 % jitter so endpoints that failed together are not retried together."""
    base = settings.WEBHOOK_RETRY_BASE_SECONDS * 4 ** min(max(attempt - 1, 0), 20)
    delay = min(settings.WEBHOOK_RETRY_MAX_DELAY_SECONDS, base)
    return delay * secrets.SystemRandom().uniform(0.8, 1.2)


class AttemptOutcome(StrEnum):
    DELIVERED = "delivered"  # 2xx
    RETRY_SCHEDULED = "retry_scheduled"  # failed; next_attempt_at is set
    GAVE_UP = "gave_up"  # failed past the deadline, or the endpoint was disabled by this failure
    NOT_STARTABLE = "not_startable"  # not due, finished, claimed by another worker, or endpoint disabled


@dataclass(frozen=True)
class AttemptResult:
    outcome: AttemptOutcome
    delivery_id: int
    next_attempt_at: datetime | None = None
    status_code: int | None = None


def _claim(delivery_id: int, now: datetime) -> bool:
    claim_until = now + timedelta(seconds=DELIVER_TIME_LIMIT_SECONDS * 2)
    return (
        WebhookDelivery.objects.filter(
            Q(claimed_until__isnull=True) | Q(claimed_until__lt=now),
            pk=delivery_id,
            status=WebhookDeliveryStatus.PENDING,
            next_attempt_at__lte=now,
            endpoint__disabled_at__isnull=True,
        ).update(claimed_until=claim_until)
        == 1
    )


def webhook_delivery_attempt(*, delivery_id: int, now: datetime | None = None) -> AttemptResult:
    """Make one attempt of a due delivery and record it; schedule the next one or give up.

    `now` is the scheduling clock (tests move it forward instead of sleeping); the `webhook-timestamp`
    header is always the real time, which receivers compare with their own clock.
    """
    now = now or timezone.now()
    if not _claim(delivery_id, now):
        return AttemptResult(AttemptOutcome.NOT_STARTABLE, delivery_id)
    # Nothing is held across the POST: re-read by id, send, then short writes.
    delivery = WebhookDelivery.objects.select_related("endpoint", "message").get(pk=delivery_id)
    endpoint = delivery.endpoint
    body = delivery.message.body.encode()
    number = delivery.attempts + 1
    started_at = timezone.now()
    try:
        target = webhook_target_resolve(endpoint.url)
    except WebhookTargetRefused as exc:
        result = PostResult(status_code=None, duration_ms=0, error=exc.message)
    else:
        headers = webhook_headers(
            secrets=_signing_secrets(endpoint, started_at),
            msg_id=delivery.message.msg_id,
            timestamp=int(started_at.timestamp()),
            body=body,
        )
        result = webhook_post(target=target, headers=headers, body=body)
    return _record(delivery=delivery, number=number, started_at=started_at, result=result, now=now)


def _record(
    *, delivery: WebhookDelivery, number: int, started_at: datetime, result: PostResult, now: datetime
) -> AttemptResult:
    last = {
        "attempts": number,
        "claimed_until": None,
        "last_attempt_at": started_at,
        "last_status_code": result.status_code,
        "last_duration_ms": result.duration_ms,
        "last_error": result.error,
    }
    with transaction.atomic():
        WebhookAttempt.objects.create(
            delivery=delivery,
            number=number,
            started_at=started_at,
            status_code=result.status_code,
            duration_ms=result.duration_ms,
            error=result.error,
            response_excerpt=result.response_excerpt,
        )
        pending = WebhookDelivery.objects.filter(pk=delivery.pk, status=WebhookDeliveryStatus.PENDING)
        if result.succeeded:
            pending.update(
                status=WebhookDeliveryStatus.SUCCEEDED, finished_at=now, next_attempt_at=None, **last
            )
            WebhookEndpoint.objects.filter(pk=delivery.endpoint_id).update(
                failing_since=None, last_success_at=now
            )
            return AttemptResult(AttemptOutcome.DELIVERED, delivery.pk, status_code=result.status_code)
        WebhookEndpoint.objects.filter(pk=delivery.endpoint_id, failing_since__isnull=True).update(
            failing_since=now
        )
        if _disable_if_failing_too_long(delivery.endpoint_id, now):
            return AttemptResult(AttemptOutcome.GAVE_UP, delivery.pk, status_code=result.status_code)
        next_at = now + timedelta(seconds=webhook_retry_delay(number))
        if next_at > delivery.deadline_at:
            pending.update(
                status=WebhookDeliveryStatus.FAILED,
                finished_at=now,
                next_attempt_at=None,
                **{**last, "last_error": f"Gave up after {number} attempts: {result.error}"},
            )
            return AttemptResult(AttemptOutcome.GAVE_UP, delivery.pk, status_code=result.status_code)
        pending.update(next_attempt_at=next_at, **last)
        delay = (next_at - now).total_seconds()
        if delay <= settings.WEBHOOK_DIRECT_RETRY_MAX_SECONDS:
            delivery_id = delivery.pk
            transaction.on_commit(lambda: webhook_delivery_dispatch(delivery_id=delivery_id, countdown=delay))
    return AttemptResult(
        AttemptOutcome.RETRY_SCHEDULED, delivery.pk, next_attempt_at=next_at, status_code=result.status_code
    )


def _disable_if_failing_too_long(endpoint_id: int, now: datetime) -> bool:
    """Disable the endpoint once it has failed every attempt for WEBHOOK_DISABLE_AFTER_DAYS; its
    pending deliveries end as failed. True if this call disabled it."""
    since = now - timedelta(days=settings.WEBHOOK_DISABLE_AFTER_DAYS)
    days = settings.WEBHOOK_DISABLE_AFTER_DAYS
    disabled = WebhookEndpoint.objects.filter(
        pk=endpoint_id, disabled_at__isnull=True, failing_since__lte=since
    ).update(
        disabled_at=now,
        disabled_reason=f"Every delivery failed for {days} days, so sending stopped. Fix the receiver, "
        "then enable the endpoint again; events from the meantime can be resent from its delivery log.",
    )
    if not disabled:
        return False
    WebhookDelivery.objects.filter(endpoint_id=endpoint_id, status=WebhookDeliveryStatus.PENDING).update(
        status=WebhookDeliveryStatus.FAILED,
        finished_at=now,
        next_attempt_at=None,
        claimed_until=None,
        last_error=f"The endpoint was disabled after failing for {days} days.",
    )
    return True


def webhook_delivery_resend(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a finished delivery again, with the same `webhook-id`, and retry it for another window."""
    if not WebhookEndpoint.objects.filter(pk=delivery.endpoint_id, disabled_at__isnull=True).exists():
        raise WebhookDeliveryNotResendable("The endpoint is disabled; enable it before resending.")
    now = timezone.now()
    with transaction.atomic():
        moved = WebhookDelivery.objects.filter(
            pk=delivery.pk, status__in=[WebhookDeliveryStatus.SUCCEEDED, WebhookDeliveryStatus.FAILED]
        ).update(
            status=WebhookDeliveryStatus.PENDING,
            next_attempt_at=now,
            deadline_at=now + timedelta(hours=settings.WEBHOOK_RETRY_WINDOW_HOURS),
            finished_at=None,
            claimed_until=None,
        )
        if not moved:
            raise WebhookDeliveryNotResendable(
                "This delivery is still being retried; it cannot be resent now."
            )
        delivery_id = delivery.pk
        transaction.on_commit(lambda: webhook_delivery_dispatch(delivery_id=delivery_id))
    return WebhookDelivery.objects.get(pk=delivery.pk)


def webhook_deliveries_due(*, now: datetime | None = None) -> QuerySet[WebhookDelivery]:
    """Pending deliveries whose next attempt is due and which no attempt holds."""
    now = now or timezone.now()
    return WebhookDelivery.objects.filter(
        Q(claimed_until__isnull=True) | Q(claimed_until__lt=now),
        status=WebhookDeliveryStatus.PENDING,
        next_attempt_at__lte=now,
        endpoint__disabled_at__isnull=True,
    ).order_by("next_attempt_at")


def webhook_deliveries_send_due(*, now: datetime | None = None, limit: int = 500) -> int:
    """The periodic sweep: dispatch due deliveries (long retries, lost messages, dead workers)."""
    ids = list(webhook_deliveries_due(now=now).values_list("pk", flat=True)[:limit])
    return sum(webhook_delivery_dispatch(delivery_id=pk) for pk in ids)
