"""Tenants, their plans and members, and their stores with a status history."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from stores.choices import Engine, MembershipRole, StoreEventKind, StoreStatus
from stores.validators import STORE_NAME_MAX_LENGTH, validate_store_name


class Plan(models.Model):
    """What a tenant may run: how many stores, and how big each engine's namespace quota is."""

    name = models.CharField(max_length=60, unique=True)
    max_stores = models.PositiveIntegerField()
    is_default = models.BooleanField(default=False, help_text="Given to tenants created at signup.")
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


class Store(models.Model):
    """One shop: one namespace, one helm release. `status` changes only through `store_transition`."""

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="stores")
    name = models.CharField(max_length=STORE_NAME_MAX_LENGTH, validators=[validate_store_name])
    engine = models.CharField(max_length=20, choices=Engine.choices)
    status = models.CharField(max_length=20, choices=StoreStatus.choices, default=StoreStatus.REQUESTED)
    status_reason = models.TextField(blank=True, default="")
    status_changed_at = models.DateTimeField(auto_now_add=True)
    namespace = models.CharField(max_length=63)
    release_name = models.CharField(max_length=53)
    host = models.CharField(
        max_length=253, help_text="<name>.<base domain>, fixed at creation; the Ingress and the URL use it."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    ready_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

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


class IdempotencyKey(models.Model):
    """A partner's `Idempotency-Key` and the response it got, replayed when the same request repeats.

    `response_status` is null while the first request is still being handled.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
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
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
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
