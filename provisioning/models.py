"""Provisioning attempts and the external calls each one made."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from provisioning.choices import RunKind, RunStatus


class ProvisioningRun(models.Model):
    """One attempt to provision or tear down one store. A retry is a new row; history is never reset."""

    store = models.ForeignKey("stores.Store", on_delete=models.CASCADE, related_name="runs")
    kind = models.CharField(max_length=12, choices=RunKind.choices)
    status = models.CharField(max_length=12, choices=RunStatus.choices, default=RunStatus.QUEUED)
    attempt = models.PositiveIntegerField(help_text="1 for the first run of this kind for this store.")
    celery_task_id = models.CharField(max_length=64, blank=True, default="", db_index=True)
    dispatch_count = models.PositiveIntegerField(default=0, help_text="How often it was sent to the broker.")
    worker = models.CharField(max_length=200, blank=True, default="", help_text="host:pid that claimed it.")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    deadline = models.DateTimeField(null=True, blank=True, help_text="After this the reaper fails it.")
    error = models.TextField(blank=True, default="")
    helm_seconds = models.FloatField(null=True, blank=True, help_text="Wall time spent inside helm.")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # At most one queued-or-running run of each kind per store: a double submit cannot queue two.
            models.UniqueConstraint(
                fields=["store", "kind"],
                condition=Q(status__in=[RunStatus.QUEUED, RunStatus.RUNNING]),
                name="one_active_run_per_store_and_kind",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "deadline"], name="run_status_deadline"),
            models.Index(fields=["store", "-created_at"], name="run_store_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.attempt} of {self.store_id} ({self.status})"


class CommandRecord(models.Model):
    """One helm, kubectl or Kubernetes API call that changed something, with redacted argv and output."""

    run = models.ForeignKey(ProvisioningRun, on_delete=models.CASCADE, related_name="commands")
    tool = models.CharField(max_length=20, help_text="helm, kubernetes-api, ...")
    argv = models.JSONField(default=list, help_text="Redacted argument list or API operation.")
    exit_code = models.IntegerField(null=True, blank=True)
    started_at = models.DateTimeField()
    duration_seconds = models.FloatField()
    output = models.TextField(blank=True, default="", help_text="Redacted, NUL-free, size-capped.")

    class Meta:
        ordering = ["started_at", "id"]

    def __str__(self) -> str:
        return f"{self.tool} {' '.join(str(a) for a in self.argv[:3])} → {self.exit_code}"
