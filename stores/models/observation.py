"""What the fleet watcher last saw of each store in its cluster (stores/fleet.py writes it)."""

from __future__ import annotations

from django.db import models


class StoreObservation(models.Model):
    """The watcher's latest findings for one store: whether its namespace exists, helm's newest record
    of its release, and whether its workloads are ready. The reconciler acts on these instead of
    asking helm; the store's status itself still changes only through store_transition."""

    store = models.OneToOneField(
        "stores.Store", on_delete=models.CASCADE, primary_key=True, related_name="observation"
    )
    namespace_present = models.BooleanField(default=True)
    release_revision = models.PositiveIntegerField(null=True, blank=True)
    release_status = models.CharField(
        max_length=32, blank=True, default="", help_text="deployed, pending-install, ..."
    )
    workloads_ready = models.BooleanField(default=True)
    not_ready_reason = models.TextField(blank=True, default="")
    not_ready_since = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["release_status"], name="observation_release_status"),
            models.Index(fields=["not_ready_since"], name="observation_not_ready_since"),
        ]

    def __str__(self) -> str:
        return f"{self.store_id}: release {self.release_status or 'absent'}, ready={self.workloads_ready}"
