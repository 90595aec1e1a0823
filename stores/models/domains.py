"""A store's custom domains and their status history (stores/domains.py holds the services)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from stores.choices import DomainStatus


class StoreDomain(models.Model):
    """One merchant domain on one store. Routed only once the TXT record proves ownership;
    `status` changes only through `stores.domains.domain_transition`."""

    store = models.ForeignKey("stores.Store", on_delete=models.CASCADE, related_name="domains")
    # ASCII form (IDN labels as xn--), lower case, no trailing dot: what DNS, the Ingress and
    # cert-manager all use, so uniqueness compares like with like.
    domain = models.CharField(max_length=253)
    # What the TXT record must hold; per domain, so proving one domain proves nothing about another.
    token = models.CharField(max_length=64, editable=False)
    status = models.CharField(
        max_length=24, choices=DomainStatus.choices, default=DomainStatus.PENDING_VERIFICATION
    )
    status_reason = models.TextField(blank=True, default="")
    status_changed_at = models.DateTimeField(auto_now_add=True)
    check_attempts = models.PositiveIntegerField(default=0)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    next_check_at = models.DateTimeField(null=True, blank=True, db_index=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    certificate_not_after = models.DateTimeField(null=True, blank=True)
    # The merchant's choice of the address the shop calls itself by (WordPress's home URL, Medusa's
    # public URL). Only acted on while the domain is active; changed by stores.domains.domain_set_primary.
    is_primary = models.BooleanField(default=False, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            # One live claim per domain across every tenant: a second store could otherwise route
            # (and get a certificate for) a domain someone else proved. Removed rows keep history.
            models.UniqueConstraint(
                fields=["domain"], condition=~Q(status=DomainStatus.REMOVED), name="unique_live_store_domain"
            ),
            # A shop has one canonical address; two concurrent "make primary" requests cannot both win.
            models.UniqueConstraint(
                fields=["store"], condition=Q(is_primary=True), name="one_primary_domain_per_store"
            ),
        ]
        indexes = [models.Index(fields=["store", "status"], name="domain_store_status")]

    def __str__(self) -> str:
        return self.domain


class StoreDomainEvent(models.Model):
    """One status change of a domain: old, new, why, who, when."""

    domain = models.ForeignKey(StoreDomain, on_delete=models.CASCADE, related_name="events")
    old_status = models.CharField(max_length=24, choices=DomainStatus.choices, blank=True, default="")
    new_status = models.CharField(max_length=24, choices=DomainStatus.choices)
    reason = models.TextField(blank=True, default="")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    actor_label = models.CharField(max_length=150, blank=True, default="", help_text="Who, when not a user.")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.domain}: {self.old_status} → {self.new_status}"
