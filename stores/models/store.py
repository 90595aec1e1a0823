"""Stores and their status history."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from stores.choices import Engine, StoreEventKind, StoreStatus, SuspensionSource
from stores.validators import STORE_NAME_MAX_LENGTH, validate_store_name


class Store(models.Model):
    """One shop: one namespace, one helm release. `status` changes only through `store_transition`."""

    tenant = models.ForeignKey("stores.Tenant", on_delete=models.PROTECT, related_name="stores")
    # Where it was placed at creation (stores.placement); a store never moves on its own.
    cluster = models.ForeignKey("provisioning.Cluster", on_delete=models.PROTECT, related_name="stores")
    name = models.CharField(max_length=STORE_NAME_MAX_LENGTH, validators=[validate_store_name])
    engine = models.CharField(max_length=20, choices=Engine.choices)
    status = models.CharField(max_length=20, choices=StoreStatus.choices, default=StoreStatus.REQUESTED)
    status_reason = models.TextField(blank=True, default="")
    status_changed_at = models.DateTimeField(auto_now_add=True)
    namespace = models.CharField(max_length=63)
    release_name = models.CharField(max_length=53)
    # The engine version the store runs (its last successful install or upgrade target); null for
    # stores created before versions were data, which run the chart's own defaults.
    engine_version = models.ForeignKey(
        "stores.EngineVersion", on_delete=models.PROTECT, null=True, blank=True, related_name="stores"
    )
    host = models.CharField(
        max_length=253, help_text="<name>.<base domain>, fixed at creation; the Ingress and the URL use it."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    ready_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    # The wanted state, apart from `status` (where it is): set while the store is to stay suspended,
    # so any later install of its release (a retry, a re-provision) renders `suspended: true` too.
    # Written only by stores.suspension, in the transaction of the status move.
    suspension_source = models.CharField(
        max_length=10, choices=SuspensionSource.choices, blank=True, default=""
    )
    suspension_reason = models.TextField(blank=True, default="")
    suspended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    suspended_at = models.DateTimeField(null=True, blank=True)
    # A store created from a backup (stores.lifecycle.store_create_from_backup): the backup its first
    # successful provision loads; cleared in the transaction that starts that restore.
    restore_from = models.ForeignKey(
        "stores.StoreBackup", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        # Staff who may change stores (retry) are not automatically allowed to destroy one.
        permissions = [("teardown_store", "Can tear down a store (release, namespace and volumes)")]
        constraints = [
            # A live name is a live subdomain: unique across tenants until teardown has finished.
            models.UniqueConstraint(
                fields=["name"], condition=~Q(status=StoreStatus.DELETED), name="unique_live_store_name"
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "-created_at"], name="store_tenant_created"),
            models.Index(fields=["status", "-created_at"], name="store_status_created"),
            models.Index(fields=["-created_at", "-id"], name="store_created"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def public_url(self) -> str:
        """Where the store answers: its host under the platform's scheme (https turns on Ingress TLS)."""
        return f"{settings.STORE_URL_SCHEME}://{self.host}/"


class StoreEvent(models.Model):
    """One line of a store's history: a status change, a provisioning step or an audited action."""

    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=12, choices=StoreEventKind.choices, default=StoreEventKind.TRANSITION)
    old_status = models.CharField(max_length=20, choices=StoreStatus.choices, blank=True, default="")
    new_status = models.CharField(max_length=20, choices=StoreStatus.choices, blank=True, default="")
    step = models.CharField(max_length=40, blank=True, default="", help_text="Machine name of a step.")
    reason = models.TextField(blank=True, default="")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    actor_label = models.CharField(max_length=150, blank=True, default="", help_text="Who, when not a user.")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["store", "-created_at"], name="event_store_recent")]

    def __str__(self) -> str:
        if self.kind == StoreEventKind.TRANSITION:
            return f"{self.store}: {self.old_status} → {self.new_status}"
        return f"{self.store}: {self.step or self.kind}"
