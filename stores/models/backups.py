"""A store's backups and their status history (stores/backups.py holds the services)."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from stores.choices import BackupKind, BackupStatus


class StoreBackup(models.Model):
    """One backup of one store: its database dump and uploads as objects under `object_key` in the
    backup bucket. `status` changes only through `stores.backup_transitions.backup_transition`.

    The tenant is kept beside the store so a final backup stays listed, scoped and restorable into a
    new store of the same tenant after its store is deleted."""

    store = models.ForeignKey("stores.Store", on_delete=models.PROTECT, related_name="backups")
    tenant = models.ForeignKey("stores.Tenant", on_delete=models.PROTECT, related_name="backups")
    # The engine it was taken from: a restore only loads into a store of the same engine.
    engine = models.CharField(max_length=20)
    kind = models.CharField(max_length=12, choices=BackupKind.choices)
    status = models.CharField(max_length=12, choices=BackupStatus.choices, default=BackupStatus.REQUESTED)
    status_reason = models.TextField(blank=True, default="")
    status_changed_at = models.DateTimeField(auto_now_add=True)
    # Why it failed, in words a merchant can act on ("the bucket did not answer", ...); separate from
    # status_reason, which is what the last move said.
    failure_reason = models.TextField(blank=True, default="")
    # Prefix of the objects (database.gz, uploads.tar.gz, manifest); derived from ids, never input.
    object_key = models.CharField(max_length=300, unique=True)
    size_bytes = models.BigIntegerField(null=True, blank=True)
    # sha256 of the manifest, which lists every part's sha256: a restore checks it before loading.
    checksum = models.CharField(max_length=64, blank=True, default="")
    engine_version = models.CharField(max_length=40, blank=True, default="")
    job_name = models.CharField(max_length=63, blank=True, default="")
    task_id = models.CharField(max_length=255, blank=True, default="")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    drill_passed = models.BooleanField(null=True, blank=True)
    drill_result = models.TextField(blank=True, default="")
    drill_seconds = models.FloatField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True, db_index=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["store", "status"], name="backup_store_status"),
            models.Index(fields=["tenant", "status"], name="backup_tenant_status"),
        ]
        constraints = [
            # At most one backup Job per store at a time: two dumps would compete for the database.
            models.UniqueConstraint(
                fields=["store"],
                condition=models.Q(status__in=[BackupStatus.REQUESTED, BackupStatus.RUNNING]),
                name="one_active_backup_per_store",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.store.name} {self.kind} backup #{self.pk}"


class StoreBackupEvent(models.Model):
    """One status change of a backup, or a restore or drill step: old, new, why, who, when."""

    backup = models.ForeignKey(StoreBackup, on_delete=models.CASCADE, related_name="events")
    old_status = models.CharField(max_length=12, choices=BackupStatus.choices, blank=True, default="")
    new_status = models.CharField(max_length=12, choices=BackupStatus.choices, blank=True, default="")
    reason = models.TextField(blank=True, default="")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    actor_label = models.CharField(max_length=150, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.old_status or '-'} -> {self.new_status or '-'}"
