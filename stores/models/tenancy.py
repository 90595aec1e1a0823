"""Tenants, their plans and their members."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from stores.choices import Engine, MembershipRole


class Plan(models.Model):
    """What a tenant may run: how many stores, and how big each engine's namespace quota is."""

    name = models.CharField(max_length=60, unique=True)
    max_stores = models.PositiveIntegerField()
    is_default = models.BooleanField(default=False, help_text="Given to tenants created at signup.")
    # Scheduled backups (stores/backups.py backups_schedule_due, from Celery beat): one a day when
    # enabled; retention keeps the newest N daily and the newest of each of M weeks.
    backups_enabled = models.BooleanField(
        default=True, help_text="Take a scheduled backup of every store daily."
    )
    backup_keep_daily = models.PositiveSmallIntegerField(default=7, help_text="Daily backups kept.")
    backup_keep_weekly = models.PositiveSmallIntegerField(default=4, help_text="Weekly backups kept.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["max_stores", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=Q(is_default=True), name="one_default_plan"
            )
        ]

    def __str__(self) -> str:
        return self.name


class PlanResources(models.Model):
    """The ResourceQuota a plan gives one store of one engine."""

    plan = models.ForeignKey(Plan, on_delete=models.CASCADE, related_name="resources")
    engine = models.CharField(max_length=20, choices=Engine.choices)
    cpu_millicores = models.PositiveIntegerField()
    memory_mib = models.PositiveIntegerField()
    storage_gib = models.PositiveIntegerField()

    class Meta:
        verbose_name_plural = "plan resources"
        constraints = [models.UniqueConstraint(fields=["plan", "engine"], name="one_resource_row_per_engine")]

    def __str__(self) -> str:
        return f"{self.plan} / {self.get_engine_display()}: {self.cpu} CPU, {self.memory}, {self.storage}"

    @property
    def cpu(self) -> str:
        """CPU as a Kubernetes quantity ("1", "1500m")."""
        if self.cpu_millicores % 1000 == 0:
            return str(self.cpu_millicores // 1000)
        return f"{self.cpu_millicores}m"

    @property
    def memory(self) -> str:
        """Memory as a Kubernetes quantity ("1Gi", "768Mi")."""
        return f"{self.memory_mib // 1024}Gi" if self.memory_mib % 1024 == 0 else f"{self.memory_mib}Mi"

    @property
    def storage(self) -> str:
        """Storage as a Kubernetes quantity."""
        return f"{self.storage_gib}Gi"


class Tenant(models.Model):
    """A merchant organisation: it owns stores and has members."""

    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=60, unique=True)
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="tenants")
    region = models.CharField(
        max_length=63, blank=True, default="", help_text="Preferred cluster region; empty: any cluster."
    )
    # Billing's flag: while set, the plan rule (stores.suspension.tenants_enforce_payment) keeps the
    # tenant's stores suspended; clearing it resumes the stores that rule suspended.
    unpaid = models.BooleanField(
        default=False, help_text="Unpaid: the tenant's stores are suspended until this is cleared."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    """A user's role in a tenant. One tenant per user to start with; the model allows more."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=MembershipRole.choices, default=MembershipRole.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "tenant"], name="one_membership_per_tenant")]

    def __str__(self) -> str:
        return f"{self.user} in {self.tenant} ({self.role})"
