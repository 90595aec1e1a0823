"""The clusters stores run on, provisioning attempts and the external calls each one made."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from provisioning.choices import ClusterConnection, ClusterHealth, RunKind, RunStatus


class Cluster(models.Model):
    """One Kubernetes cluster stores can be placed on. `health` changes only through
    `provisioning.clusters.cluster_health_transition`; credentials are stored sealed, never in plain text."""

    name = models.SlugField(max_length=63, unique=True)
    region = models.CharField(
        max_length=63, blank=True, default="", help_text="e.g. eu-west; matched to a tenant's preference."
    )
    labels = models.JSONField(default=dict, blank=True)
    connection = models.CharField(
        max_length=12, choices=ClusterConnection.choices, default=ClusterConnection.AMBIENT
    )
    kubeconfig_sealed = models.TextField(
        blank=True, default="", help_text="The kubeconfig, encrypted (credential_box)."
    )
    context = models.CharField(
        max_length=253, blank=True, default="", help_text="kubeconfig context; empty: its current one."
    )
    is_default = models.BooleanField(
        default=False, help_text="The ambient cluster of single-cluster set-ups."
    )
    draining = models.BooleanField(
        default=False, help_text="No new store is placed here; existing ones stay."
    )
    helm_concurrency = models.PositiveIntegerField(
        default=4, help_text="Most helm runs at once on this cluster."
    )
    health = models.CharField(max_length=12, choices=ClusterHealth.choices, default=ClusterHealth.UNKNOWN)
    health_reason = models.TextField(blank=True, default="")
    health_changed_at = models.DateTimeField(null=True, blank=True)
    health_checked_at = models.DateTimeField(null=True, blank=True)
    allocatable_cpu_millicores = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="Sum over its Ready, schedulable nodes; empty until measured."
    )
    allocatable_memory_mib = models.PositiveBigIntegerField(null=True, blank=True)
    watched_at = models.DateTimeField(
        null=True, blank=True, help_text="Last heartbeat of the watcher following this cluster."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=Q(is_default=True), name="one_default_cluster"
            ),
            models.CheckConstraint(
                condition=Q(connection=ClusterConnection.AMBIENT) | ~Q(kubeconfig_sealed=""),
                name="stored_connection_has_credentials",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class ClusterEvent(models.Model):
    """One change of a cluster's health, with the reason."""

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="events")
    old_health = models.CharField(max_length=12, choices=ClusterHealth.choices)
    new_health = models.CharField(max_length=12, choices=ClusterHealth.choices)
    reason = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.cluster}: {self.old_health} → {self.new_health}"


class ProvisioningRun(models.Model):
    """One attempt to provision or tear down one store. A retry is a new row; history is never reset."""

    store = models.ForeignKey("stores.Store", on_delete=models.CASCADE, related_name="runs")
    # Where the run acts (its store's cluster when created): the per-cluster helm cap counts these.
    cluster = models.ForeignKey(Cluster, on_delete=models.PROTECT, null=True, blank=True, related_name="runs")
    kind = models.CharField(max_length=12, choices=RunKind.choices)
    status = models.CharField(max_length=12, choices=RunStatus.choices, default=RunStatus.QUEUED)
    attempt = models.PositiveIntegerField(help_text="1 for the first run of this kind for this store.")
    celery_task_id = models.CharField(max_length=64, blank=True, default="", db_index=True)
    # Each message carries the dispatch number it was sent with; one older than this is superseded and
    # drops itself, so a run has one live message however often it was sent.
    dispatch_count = models.PositiveIntegerField(default=0, help_text="How often it was sent to the broker.")
    dispatched_at = models.DateTimeField(null=True, blank=True, help_text="When it was last sent.")
    # Told busy after its latest dispatch: it waits to be handed the next free helm slot.
    told_busy_at = models.DateTimeField(
        "last found no helm slot",
        null=True,
        blank=True,
        help_text="When a claim last found no free helm slot for it.",
    )
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
