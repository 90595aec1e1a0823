"""What the partner API and sign-up keep: idempotency keys, token scopes, e-mail confirmations."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from stores.choices import MembershipRole


class IdempotencyKey(models.Model):
    """A partner's `Idempotency-Key` and the response it got, replayed when the same request repeats.

    `response_status` is null while the first request is still being handled.
    """

    tenant = models.ForeignKey("stores.Tenant", on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text="sha256 of method, path and canonical JSON body.")
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "key"], name="one_idempotency_key_per_tenant")
        ]

    def __str__(self) -> str:
        return f"{self.tenant_id}/{self.key}"


class ApiTokenScope(models.Model):
    """What an API token (a knox AuthToken, which has only a user) acts for: one tenant, the role it was
    minted with, optionally read-only, and a fingerprint of the password it was minted under (a
    password change or reset makes the token stop working)."""

    token = models.OneToOneField(
        "knox.AuthToken", on_delete=models.CASCADE, primary_key=True, related_name="scope"
    )
    tenant = models.ForeignKey("stores.Tenant", on_delete=models.CASCADE, related_name="+")
    role = models.CharField(max_length=10, choices=MembershipRole.choices)
    read_only = models.BooleanField(default=False)
    password_fingerprint = models.CharField(
        max_length=128, help_text="The user's session auth hash when minted (an HMAC of the password hash)."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return (
            f"{self.token_id[:8]} for {self.tenant_id} ({self.role}{', read-only' if self.read_only else ''})"
        )


class EmailVerification(models.Model):
    """An account whose e-mail address is not confirmed yet: created at signup, deleted when the
    signed link is followed. While it exists the account cannot launch a store. Accounts without one
    (created before issue 15, by staff or by `create_api_token`) count as verified."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="pending_email"
    )
    email = models.EmailField(max_length=150)
    sent_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.email} (unverified)"
