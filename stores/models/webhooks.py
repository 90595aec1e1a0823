"""Outbound webhooks: a tenant's endpoints, the messages its stores' status changes produce, and one
delivery per (endpoint, message) with one row per HTTP attempt."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from stores.choices import WebhookDeliveryStatus, WebhookEventType


class WebhookEndpoint(models.Model):
    """A partner's URL that receives signed events. The signing secret is sealed at rest
    (provisioning.credential_box) and shown in plain only when it is created or rotated."""

    tenant = models.ForeignKey("stores.Tenant", on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.URLField(max_length=2000)
    description = models.CharField(max_length=200, blank=True, default="")
    # Empty: every event type.
    event_types = models.JSONField(default=list, blank=True)
    secret_sealed = models.TextField(editable=False)
    # After a rotation the old secret keeps signing (a second signature) until this time, so receivers
    # can switch over without dropping events.
    previous_secret_sealed = models.TextField(blank=True, default="", editable=False)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    # First failed attempt since the last success; an endpoint failing for WEBHOOK_DISABLE_AFTER_DAYS is
    # disabled.
    failing_since = models.DateTimeField(null=True, blank=True, editable=False)
    last_success_at = models.DateTimeField(null=True, blank=True, editable=False)
    disabled_at = models.DateTimeField(null=True, blank=True, editable=False)
    disabled_reason = models.TextField(blank=True, default="", editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.url

    @property
    def is_enabled(self) -> bool:
        return self.disabled_at is None

    def subscribes_to(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types


class WebhookMessage(models.Model):
    """One event for a tenant's endpoints. `msg_id` is the stable `webhook-id` every attempt and every
    resend carries, so receivers can drop duplicates; `body` is the exact JSON sent each time."""

    tenant = models.ForeignKey("stores.Tenant", on_delete=models.CASCADE, related_name="+")
    store = models.ForeignKey(
        "stores.Store", on_delete=models.SET_NULL, null=True, blank=True, related_name="webhook_messages"
    )
    event_type = models.CharField(max_length=40, choices=WebhookEventType.choices)
    msg_id = models.CharField(max_length=40, unique=True)
    body = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.msg_id} {self.event_type}"


class WebhookDelivery(models.Model):
    """One message to one endpoint, retried with backoff until `deadline_at`. `status` changes only
    through stores.webhooks (conditional UPDATEs); `claimed_until` marks an attempt in flight."""

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    message = models.ForeignKey(WebhookMessage, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(
        max_length=12, choices=WebhookDeliveryStatus.choices, default=WebhookDeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    deadline_at = models.DateTimeField()
    # An attempt in flight holds the delivery until then; a worker killed mid-attempt lets it go.
    claimed_until = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_duration_ms = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    finished_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "message"], name="one_delivery_per_endpoint_message")
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="webhook_delivery_due")]

    def __str__(self) -> str:
        return f"{self.message.msg_id} -> {self.endpoint_id} ({self.status})"


class WebhookAttempt(models.Model):
    """One HTTP POST of a delivery: what came back and how long it took. Never rewritten."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField()
    error = models.TextField(blank=True, default="")
    response_excerpt = models.TextField(blank=True, default="", help_text="Redacted, capped.")

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.delivery_id}: {self.status_code or self.error}"
