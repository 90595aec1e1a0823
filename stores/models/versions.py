"""Engine versions as data, and staged rollouts of a version across stores."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from stores.choices import (
    Engine,
    EngineVersionState,
    RolloutItemStatus,
    RolloutSelection,
    RolloutStatus,
)

# The helm values an engine version may set: image references only. Everything else in the values
# is the platform's (quota, ingress, the credentials Secret's name) and must not change by version.
VERSION_VALUE_KEYS = frozenset({"image", "images"})


class EngineVersion(models.Model):
    """One deployable version of an engine: the chart it needs, the image tags it sets, its notes."""

    engine = models.CharField(max_length=20, choices=Engine.choices)
    name = models.CharField(max_length=40, help_text="What staff and merchants see, e.g. 6.8.2-1.")
    chart_version = models.CharField(max_length=40, help_text="The store chart's version this needs.")
    values = models.JSONField(
        default=dict,
        blank=True,
        help_text='Helm values for images only, e.g. {"images": {"wordpress": {"tag": "6.8.2-php8.3-apache"}}}.',
    )
    release_notes = models.TextField(blank=True, default="")
    state = models.CharField(
        max_length=12, choices=EngineVersionState.choices, default=EngineVersionState.AVAILABLE
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["engine", "-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["engine", "name"], name="one_engine_version_name"),
            models.UniqueConstraint(
                fields=["engine"],
                condition=Q(state=EngineVersionState.DEFAULT),
                name="one_default_engine_version",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_engine_display()} {self.name}"

    def clean(self) -> None:
        if not isinstance(self.values, dict):
            raise ValidationError({"values": "Values must be a JSON object."})
        extra = sorted(set(self.values) - VERSION_VALUE_KEYS)
        if extra:
            raise ValidationError(
                {
                    "values": f"A version may set only {', '.join(sorted(VERSION_VALUE_KEYS))}; not {', '.join(extra)}."
                }
            )


class Rollout(models.Model):
    """Moving a selection of stores to a target version, batch by batch. `status` changes only
    through stores.upgrades."""

    target = models.ForeignKey(EngineVersion, on_delete=models.PROTECT, related_name="rollouts")
    selection = models.CharField(
        max_length=10, choices=RolloutSelection.choices, default=RolloutSelection.ALL
    )
    plan = models.ForeignKey("stores.Plan", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    tenant = models.ForeignKey(
        "stores.Tenant", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    store_names = models.JSONField(default=list, blank=True)
    batch_size = models.PositiveIntegerField(default=5)
    pause_seconds = models.PositiveIntegerField(default=60, help_text="Wait between batches.")
    max_failures = models.PositiveIntegerField(
        default=0, help_text="Failed stores a batch may have before the rollout stops itself."
    )
    status = models.CharField(max_length=12, choices=RolloutStatus.choices, default=RolloutStatus.PENDING)
    status_reason = models.TextField(blank=True, default="")
    current_batch = models.PositiveIntegerField(default=0)
    next_batch_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Rollout {self.pk} to {self.target}"


class RolloutItem(models.Model):
    """One store in a rollout: its batch, the version it came from, and how its upgrade went."""

    rollout = models.ForeignKey(Rollout, on_delete=models.CASCADE, related_name="items")
    store = models.ForeignKey("stores.Store", on_delete=models.PROTECT, related_name="rollout_items")
    batch = models.PositiveIntegerField()
    status = models.CharField(
        max_length=14, choices=RolloutItemStatus.choices, default=RolloutItemStatus.PENDING
    )
    previous_version = models.ForeignKey(
        EngineVersion, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    reason = models.TextField(blank=True, default="")
    # The verified backup taken before the upgrade, where backups are configured.
    backup = models.ForeignKey(
        "stores.StoreBackup", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["batch", "id"]
        constraints = [
            models.UniqueConstraint(fields=["rollout", "store"], name="one_item_per_rollout_store")
        ]

    def __str__(self) -> str:
        return f"{self.store} in batch {self.batch}: {self.status}"
