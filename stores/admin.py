"""Staff admin for tenants, plans and stores. Status and results are read-only; actions call services."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.options import InlineModelAdmin
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import connection, transaction
from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.timesince import timesince

from platform_site.errors import ApplicationError
from provisioning.admin import RUN_LIFE_FIELDS
from provisioning.cluster_access import ClusterAccess
from provisioning.clusters import (
    cluster_check,
    cluster_create,
    cluster_record_check,
    cluster_replace_credentials,
    cluster_set_draining,
    kubeconfig_check,
)
from provisioning.models import Cluster, ProvisioningRun
from provisioning.services import provisioning_runs_hand_off
from stores.backups import backup_request
from stores.choices import STORE_TERMINAL_STATUSES, SuspensionSource
from stores.domains import domain_check, domain_remove
from stores.lifecycle import store_create, store_request_teardown, store_retry
from stores.models import (
    EngineVersion,
    Membership,
    Plan,
    PlanResources,
    Rollout,
    RolloutItem,
    Store,
    StoreBackup,
    StoreBackupEvent,
    StoreDomain,
    StoreDomainEvent,
    StoreEvent,
    Tenant,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from stores.placement import cluster_loads
from stores.presentation import DOMAIN_STATUS_COLOURS, STATUS_COLOURS
from stores.suspension import store_resume, store_suspend, tenant_set_unpaid
from stores.upgrades import rollout_cancel, rollout_check, rollout_create, rollout_pause, rollout_start


def status_badge(status: str, label: str) -> str:
    """A coloured pill for a store status, the same colours as the merchant pages."""
    # The colours are in static/css/status-colours.css (StoreAdmin.Media): no inline style under the CSP.
    key = status if status in STATUS_COLOURS else "requested"
    return format_html('<span class="admin-status-badge" data-status-colour="{}">{}</span>', key, label)


class EstimatedCountPaginator(Paginator):
    """Avoids a full COUNT(*) over the whole stores table on PostgreSQL: an unfiltered changelist uses
    the planner's row estimate (kept fresh by autovacuum's ANALYZE); filtered lists, bounded by an
    index, count for real. A table never analyzed (estimate -1) is counted once for real."""

    @cached_property
    def count(self) -> int:  # type: ignore[override]
        query = getattr(self.object_list, "query", None)
        if connection.vendor == "postgresql" and query is not None and not query.where:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
                    [query.model._meta.db_table],
                )
                row = cursor.fetchone()
            if row and row[0] >= 0:
                return int(row[0])
        return super().count


class PlanResourcesInline(admin.TabularInline):
    model = PlanResources
    extra = 0


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = ("name", "max_stores", "is_default")
    inlines = [PlanResourcesInline]


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ("user",)


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    list_select_related = ("plan",)
    inlines = [MembershipInline]
    list_display = ("name", "slug", "plan", "unpaid", "created_at")
    list_filter = ("plan", "unpaid")
    readonly_fields = ("unpaid",)
    actions = ["mark_unpaid", "mark_paid"]

    @admin.action(description="Mark unpaid (pause their stores)", permissions=["change"])
    def mark_unpaid(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        self._set_unpaid(request, queryset, unpaid=True)

    @admin.action(
        description="Mark paid (resume the stores an unpaid account paused)", permissions=["change"]
    )
    def mark_paid(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        self._set_unpaid(request, queryset, unpaid=False)

    def _set_unpaid(self, request: HttpRequest, queryset: QuerySet[Tenant], *, unpaid: bool) -> None:
        for tenant in queryset:
            report = tenant_set_unpaid(tenant=tenant, unpaid=unpaid)
            moved = report.suspended if unpaid else report.resumed
            self.message_user(
                request,
                f"{tenant.name}: {'paused' if unpaid else 'resuming'} {len(moved)} store(s).",
                messages.SUCCESS,
            )
            for name, why in report.refused.items():
                self.message_user(request, f"Store {name}: {why}", messages.WARNING)


class StoreEventInline(admin.TabularInline):
    model = StoreEvent
    fields = ("created_at", "kind", "old_status", "new_status", "step", "reason", "actor", "actor_label")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("-created_at", "-id")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ProvisioningRunInline(admin.TabularInline):
    model = ProvisioningRun
    fields = (*RUN_LIFE_FIELDS, "error", "celery_task_id")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class StoreAddForm(forms.ModelForm):
    """Staff create stores through `store_create`, like every other interface. The service validates
    and creates in one call, so it runs in `clean`: its refusal becomes the form's error, and
    `save_model` only picks up the store it made."""

    class Meta:
        model = Store
        fields = ("tenant", "name", "engine")

    # The staff member creating the store; StoreAdmin.get_form binds it per request.
    actor: Any = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.created_store: Store | None = None

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        tenant, name, engine = cleaned.get("tenant"), cleaned.get("name"), cleaned.get("engine")
        if tenant and engine and not self.errors:
            try:
                self.created_store, _ = store_create(
                    tenant=tenant, name=name, engine=engine, actor=self.actor
                )
            except ApplicationError as exc:
                raise ValidationError(exc.message) from exc
        return cleaned

    def _post_clean(self) -> None:
        # The row is built by store_create, not by this form; its field validators are the service's.
        return None


@admin.register(Store)
class StoreAdmin(admin.ModelAdmin):
    list_display = ("name", "tenant", "engine", "badge", "cluster", "age", "last_event")
    list_filter = ("status", "engine", "cluster", "tenant__plan")
    search_fields = ("name", "tenant__name", "tenant__slug")
    list_select_related = ("tenant", "cluster")
    raw_id_fields = ("tenant", "created_by")
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    list_per_page = 50
    actions = ["retry_provisioning", "suspend", "resume", "tear_down"]
    readonly_fields = (
        "status",
        "status_reason",
        "suspension_source",
        "suspension_reason",
        "suspended_by",
        "suspended_at",
        "status_changed_at",
        "namespace",
        "release_name",
        "public_url",
        "created_by",
        "created_at",
        "ready_at",
        "deleted_at",
    )
    inlines = [StoreEventInline, ProvisioningRunInline]

    class Media:
        css = {"all": ["css/status-colours.css"]}

    def get_queryset(self, request: HttpRequest) -> QuerySet[Store]:
        latest = StoreEvent.objects.filter(store=OuterRef("pk")).order_by("-created_at", "-id")
        return (
            super()
            .get_queryset(request)
            .annotate(
                last_event_reason=Subquery(latest.values("reason")[:1]),
                last_event_at=Subquery(latest.values("created_at")[:1]),
            )
        )

    def get_inline_instances(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        return super().get_inline_instances(request, obj) if obj is not None else []

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = StoreAddForm
            form_class = super().get_form(request, obj, change, **kwargs)
            return type(form_class.__name__, (form_class,), {"actor": request.user})
        return super().get_form(request, obj, change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ("tenant", "name", "engine")
        return ("tenant", "name", "engine", *self.readonly_fields)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ()
        return ("tenant", "name", "engine", *self.readonly_fields)

    def save_model(self, request: HttpRequest, obj: Store, form: Any, change: bool) -> None:
        if change or form.created_store is None:
            return  # nothing on an existing store is editable here
        obj.pk = form.created_store.pk
        obj.refresh_from_db()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # stores are torn down through the action, which removes the cluster side too

    @admin.display(description="Status", ordering="status")
    def badge(self, store: Store) -> str:
        return status_badge(store.status, store.get_status_display())

    @admin.display(description="Age", ordering="created_at")
    def age(self, store: Store) -> str:
        return timesince(store.created_at, timezone.now()).split(",")[0]

    @admin.display(description="Last event")
    def last_event(self, store: Store) -> str:
        reason = getattr(store, "last_event_reason", "") or ""
        return reason if len(reason) <= 80 else f"{reason[:77]}…"

    def _apply_to_each(
        self, request: HttpRequest, queryset: QuerySet[Store], service: Callable[..., Any], done_message: str
    ) -> None:
        """Call `service` for every selected store; report successes once and each refusal by name."""
        done = 0
        for store in queryset:
            try:
                service(store=store, actor=request.user)
                done += 1
            except ApplicationError as exc:
                self.message_user(request, f"Store {store.name}: {exc.message}", messages.WARNING)
        if done:
            self.message_user(request, done_message.format(count=done), messages.SUCCESS)

    def has_teardown_permission(self, request: HttpRequest) -> bool:
        """Tearing a store down destroys its data: a permission of its own, beyond change_store."""
        return request.user.has_perm(f"{self.opts.app_label}.teardown_store")

    @admin.action(description="Retry provisioning (failed stores)", permissions=["change"])
    def retry_provisioning(self, request: HttpRequest, queryset: QuerySet[Store]) -> None:
        self._apply_to_each(request, queryset, store_retry, "Retry queued for {count} store(s).")

    @admin.action(description="Pause selected stores (staff suspension)", permissions=["change"])
    def suspend(self, request: HttpRequest, queryset: QuerySet[Store]) -> HttpResponse | None:
        reason = (request.POST.get("reason") or "").strip()
        if request.POST.get("confirmed") != "yes" or not reason:
            # A staff pause always says why: the merchant sees it and cannot lift it themselves.
            return TemplateResponse(
                request,
                "admin/stores/store/suspend_confirmation.html",
                {
                    **self.admin_site.each_context(request),
                    "title": "Pause stores?",
                    "stores": queryset,
                    "action_checkbox_name": ACTION_CHECKBOX_NAME,
                    "opts": self.model._meta,
                },
            )

        def staff_suspend(*, store: Store, actor: Any) -> Store:
            return store_suspend(store=store, source=SuspensionSource.STAFF, reason=reason[:500], actor=actor)

        self._apply_to_each(request, queryset, staff_suspend, "Pause queued for {count} store(s).")
        return None

    @admin.action(description="Resume selected stores", permissions=["change"])
    def resume(self, request: HttpRequest, queryset: QuerySet[Store]) -> None:
        def staff_resume(*, store: Store, actor: Any) -> Store:
            return store_resume(store=store, source=SuspensionSource.STAFF, actor=actor)

        self._apply_to_each(request, queryset, staff_resume, "Resume queued for {count} store(s).")

    @admin.action(description="Tear down selected stores", permissions=["teardown"])
    def tear_down(self, request: HttpRequest, queryset: QuerySet[Store]) -> HttpResponse | None:
        if request.POST.get("confirmed") != "yes":
            return TemplateResponse(
                request,
                "admin/stores/store/teardown_confirmation.html",
                {
                    **self.admin_site.each_context(request),
                    "title": "Tear down stores?",
                    "stores": queryset,
                    "action_checkbox_name": ACTION_CHECKBOX_NAME,
                    "opts": self.model._meta,
                },
            )
        self._apply_to_each(
            request, queryset, store_request_teardown, "Teardown queued for {count} store(s)."
        )
        return None


@admin.register(StoreEvent)
class StoreEventAdmin(admin.ModelAdmin):
    list_display = ("created_at", "store", "kind", "old_status", "new_status", "step", "reason")
    list_filter = ("kind", "new_status")
    search_fields = ("store__name",)
    list_select_related = ("store",)
    raw_id_fields = ("store", "actor")
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ClusterAdminForm(forms.ModelForm):
    """Adding a cluster: its kubeconfig is pasted once, sealed by the service and never shown again."""

    kubeconfig = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 8, "autocomplete": "off", "spellcheck": "false"}),
        required=False,
        help_text="Paste the cluster's kubeconfig to add or replace its credentials; it is stored sealed "
        "and never displayed. Leave empty to keep the stored one.",
    )

    class Meta:
        model = Cluster
        fields = ("name", "region", "labels", "context", "helm_concurrency", "draining")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        kubeconfig = cleaned.get("kubeconfig")
        if self.instance.pk is None and not kubeconfig:
            raise ValidationError("A new cluster needs its kubeconfig.")
        if kubeconfig:
            try:
                kubeconfig_check(kubeconfig, cleaned.get("context", ""))
            except ApplicationError as exc:
                raise ValidationError(exc.message) from exc
        return cleaned


@admin.register(Cluster)
class ClusterAdmin(admin.ModelAdmin):
    form = ClusterAdminForm
    list_display = (
        "name",
        "region",
        "health_badge",
        "draining",
        "store_count",
        "capacity",
        "health_checked_at",
    )
    list_filter = ("health", "draining", "region")
    search_fields = ("name", "region")
    actions = ["drain", "undrain", "check_now"]
    readonly_fields = (
        "connection",
        "is_default",
        "health",
        "health_reason",
        "health_changed_at",
        "health_checked_at",
        "allocatable_cpu_millicores",
        "allocatable_memory_mib",
    )

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        editable = ["name", "region", "labels", "context", "helm_concurrency", "draining"]
        if obj is None or not obj.is_default:
            editable.append("kubeconfig")
        return (*editable, *self.readonly_fields) if obj is not None else editable

    def get_queryset(self, request: HttpRequest) -> QuerySet[Cluster]:
        return (
            super()
            .get_queryset(request)
            .annotate(live_stores=Count("stores", filter=~Q(stores__status__in=STORE_TERMINAL_STATUSES)))
        )

    def save_model(self, request: HttpRequest, obj: Cluster, form: Any, change: bool) -> None:
        # The form checked the kubeconfig; the services seal it.
        kubeconfig, context = form.cleaned_data.get("kubeconfig"), form.cleaned_data.get("context", "")
        if not change:
            created = cluster_create(
                name=obj.name,
                kubeconfig=kubeconfig,
                context=context,
                region=obj.region,
                labels=obj.labels,
                helm_concurrency=obj.helm_concurrency,
            )
            obj.pk = created.pk
            obj.refresh_from_db()
            return
        obj.save(update_fields=["name", "region", "labels", "context", "helm_concurrency", "draining"])
        if kubeconfig:
            cluster_replace_credentials(cluster=obj, kubeconfig=kubeconfig, context=context)
        if "helm_concurrency" in form.changed_data:
            # A raised cap: waiting runs take the new slots now, not at their next safety poll.
            transaction.on_commit(provisioning_runs_hand_off)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None or not obj.stores.exists()  # a cluster with stores is drained, not deleted

    @admin.display(description="Health", ordering="health")
    def health_badge(self, cluster: Cluster) -> str:
        return format_html('<span title="{}">{}</span>', cluster.health_reason, cluster.get_health_display())

    @admin.display(description="Stores", ordering="live_stores")
    def store_count(self, cluster: Cluster) -> int:
        return getattr(cluster, "live_stores", 0)

    @admin.display(description="Placed quota / allocatable")
    def capacity(self, cluster: Cluster) -> str:
        load = next((load for load in cluster_loads() if load.cluster.pk == cluster.pk), None)
        if (
            load is None
            or cluster.allocatable_cpu_millicores is None
            or cluster.allocatable_memory_mib is None
        ):
            return "not measured yet"
        return (
            f"CPU {load.cpu_millicores / 1000:g}/{cluster.allocatable_cpu_millicores / 1000:g}, "
            f"memory {load.memory_mib / 1024:.1f}/{cluster.allocatable_memory_mib / 1024:.1f} GiB"
        )

    @admin.action(description="Drain: place no new store here", permissions=["change"])
    def drain(self, request: HttpRequest, queryset: QuerySet[Cluster]) -> None:
        for cluster in queryset:
            cluster_set_draining(cluster=cluster, draining=True)
        self.message_user(
            request, f"{queryset.count()} cluster(s) draining; their stores stay.", messages.SUCCESS
        )

    @admin.action(description="Open for new stores again", permissions=["change"])
    def undrain(self, request: HttpRequest, queryset: QuerySet[Cluster]) -> None:
        for cluster in queryset:
            cluster_set_draining(cluster=cluster, draining=False)
        self.message_user(request, f"{queryset.count()} cluster(s) open for new stores.", messages.SUCCESS)

    @admin.action(description="Check health and capacity now", permissions=["change"])
    def check_now(self, request: HttpRequest, queryset: QuerySet[Cluster]) -> None:
        for cluster in queryset:
            try:
                check = cluster_check(access=ClusterAccess.for_cluster(cluster))
            except ApplicationError as exc:
                self.message_user(request, f"{cluster.name}: {exc.message}", messages.WARNING)
                continue
            cluster_record_check(cluster=cluster, check=check)
            level = messages.SUCCESS if check.reachable else messages.WARNING
            self.message_user(
                request, f"{cluster.name}: {'reachable' if check.reachable else check.reason}", level
            )


class StoreDomainEventInline(admin.TabularInline):
    model = StoreDomainEvent
    fields = ("created_at", "old_status", "new_status", "reason", "actor", "actor_label")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("-created_at", "-id")


# --- Engine versions and rollouts ---------------------------------------------------------------------


@admin.register(EngineVersion)
class EngineVersionAdmin(admin.ModelAdmin):
    list_display = ("__str__", "engine", "chart_version", "state", "created_at")
    list_filter = ("engine", "state")
    search_fields = ("name",)
    readonly_fields = ("created_at",)


class RolloutItemInline(admin.TabularInline):
    model = RolloutItem
    fields = ("store", "batch", "status", "previous_version", "backup", "reason", "started_at", "finished_at")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(StoreDomain)
class StoreDomainAdmin(admin.ModelAdmin):
    """Custom domains: read-only state; checks and removal go through the services."""

    list_display = (
        "domain",
        "store",
        "badge",
        "primary",
        "status_reason",
        "last_checked_at",
        "certificate_not_after",
    )
    list_filter = ("status", "is_primary")
    search_fields = ("domain", "store__name")
    list_select_related = ("store",)
    raw_id_fields = ("store", "created_by")
    inlines = [StoreDomainEventInline]
    actions = ["check_now", "remove"]
    readonly_fields = tuple(
        f.name for f in StoreDomain._meta.get_fields() if getattr(f, "concrete", False) and f.name != "id"
    )

    class Media:
        css = {"all": ["css/status-colours.css"]}

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # merchants prove ownership; staff cannot skip that by adding a row

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # removal keeps the history and re-installs the store: the "remove" action

    @admin.display(description="Primary", boolean=True, ordering="is_primary")
    def primary(self, domain: StoreDomain) -> bool:
        return domain.is_primary

    @admin.display(description="Status", ordering="status")
    def badge(self, domain: StoreDomain) -> str:
        key = f"domain-{domain.status if domain.status in DOMAIN_STATUS_COLOURS else 'pending_verification'}"
        return format_html(
            '<span class="admin-status-badge" data-status-colour="{}">{}</span>',
            key,
            domain.get_status_display(),
        )

    @admin.action(description="Check the TXT record now", permissions=["change"])
    def check_now(self, request: HttpRequest, queryset: QuerySet[StoreDomain]) -> None:
        for domain in queryset:
            try:
                checked = domain_check(domain_id=domain.pk, actor=request.user)
            except ApplicationError as exc:
                self.message_user(request, f"{domain.domain}: {exc.message}", messages.WARNING)
            else:
                self.message_user(
                    request, f"{checked.domain}: {checked.get_status_display()}. {checked.status_reason}"
                )

    @admin.action(description="Remove (unroute and free the name)", permissions=["change"])
    def remove(self, request: HttpRequest, queryset: QuerySet[StoreDomain]) -> None:
        for domain in queryset:
            try:
                domain_remove(domain=domain, actor=request.user)
            except ApplicationError as exc:
                self.message_user(request, f"{domain.domain}: {exc.message}", messages.WARNING)
            else:
                self.message_user(request, f"{domain.domain} removed.", messages.SUCCESS)


class RolloutForm(forms.ModelForm):
    """A new rollout's settings, checked by the same service that creates it."""

    class Meta:
        model = Rollout
        fields = (
            "target", "selection", "plan", "tenant", "store_names", "batch_size", "pause_seconds", "max_failures",
        )  # fmt: skip

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.instance.pk is None and data.get("target") is not None:
            try:
                rollout_check(
                    target=data["target"],
                    selection=data.get("selection", ""),
                    plan=data.get("plan"),
                    tenant=data.get("tenant"),
                    store_names=data.get("store_names") or [],
                    batch_size=data.get("batch_size") or 0,
                )
            except ApplicationError as exc:
                raise ValidationError(exc.message) from exc
        return data


@admin.register(Rollout)
class RolloutAdmin(admin.ModelAdmin):
    """Create a rollout (planned, not started), then start, pause, resume or cancel it by action."""

    form = RolloutForm
    list_display = ("__str__", "status", "current_batch", "batch_size", "created_at", "finished_at")
    list_filter = ("status", "target__engine")
    list_select_related = ("target",)
    raw_id_fields = ("tenant",)
    actions = ["start_or_resume", "pause", "cancel"]
    status_fields = (
        "status",
        "status_reason",
        "current_batch",
        "next_batch_at",
        "created_by",
        "created_at",
        "finished_at",
    )

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        # Once created a rollout's settings are its record: only the actions change it.
        if obj is not None:
            return (*RolloutForm.Meta.fields, *self.status_fields)
        return self.status_fields

    def save_model(self, request: HttpRequest, obj: Rollout, form: Any, change: bool) -> None:
        if change:
            return
        created = rollout_create(
            actor=request.user, **{name: form.cleaned_data.get(name) for name in RolloutForm.Meta.fields}
        )
        obj.pk = created.pk
        obj._state.adding = False

    def get_inlines(self, request: HttpRequest, obj: Any) -> list[type[InlineModelAdmin[Any, Any]]]:
        # A new rollout has no items until the service plans them.
        return [RolloutItemInline] if obj is not None else []

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        # Nothing to save beside the rollout: the service made its items, the inline is read-only.
        return None

    def _each(
        self, request: HttpRequest, queryset: QuerySet[Rollout], command: Callable[..., Rollout], done: str
    ) -> None:
        for rollout in queryset:
            try:
                command(rollout=rollout)
            except ApplicationError as exc:
                self.message_user(request, f"{rollout}: {exc.message}", messages.WARNING)
            else:
                self.message_user(request, f"{rollout}: {done}", messages.SUCCESS)

    @admin.action(description="Start or resume", permissions=["change"])
    def start_or_resume(self, request: HttpRequest, queryset: QuerySet[Rollout]) -> None:
        self._each(request, queryset, rollout_start, "running; its next batch starts within a minute.")

    @admin.action(description="Pause (the batch in flight finishes)", permissions=["change"])
    def pause(self, request: HttpRequest, queryset: QuerySet[Rollout]) -> None:
        self._each(request, queryset, rollout_pause, "paused.")

    @admin.action(description="Cancel", permissions=["change"])
    def cancel(self, request: HttpRequest, queryset: QuerySet[Rollout]) -> None:
        self._each(request, queryset, rollout_cancel, "cancelled; upgraded stores stay upgraded.")


# --- Webhooks (read-only: partners manage their endpoints themselves) ---------------------------------


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    fields = ("number", "started_at", "status_code", "duration_ms", "error")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    list_display = ("url", "tenant", "disabled_at", "failing_since", "last_success_at", "created_at")
    list_filter = (("disabled_at", admin.EmptyFieldListFilter),)
    list_select_related = ("tenant",)
    search_fields = ("url", "tenant__name")
    # The secret is never shown here; partners see it once when they create or rotate it.
    fields = (
        "tenant", "url", "description", "event_types", "disabled_at", "disabled_reason", "failing_since",
        "last_success_at", "created_by", "created_at",
    )  # fmt: skip
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ("__str__", "status", "attempts", "last_status_code", "next_attempt_at", "created_at")
    list_filter = ("status", "message__event_type")
    list_select_related = ("message", "endpoint")
    raw_id_fields = ("endpoint", "message")
    inlines = [WebhookAttemptInline]
    readonly_fields = (
        "endpoint", "message", "status", "attempts", "next_attempt_at", "deadline_at", "claimed_until",
        "last_attempt_at", "last_status_code", "last_duration_ms", "last_error", "finished_at", "created_at",
    )  # fmt: skip

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# --- Backups ------------------------------------------------------------------------------------------


class StoreBackupEventInline(admin.TabularInline):
    model = StoreBackupEvent
    fields = ("created_at", "old_status", "new_status", "reason", "actor", "actor_label")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("-created_at", "-id")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(StoreBackup)
class StoreBackupAdmin(admin.ModelAdmin):
    """Backups: read-only state and results; "Back up now" goes through the service (restores replace
    a merchant's data, so only the merchant's typed confirmation starts one)."""

    list_display = (
        "__str__",
        "store",
        "kind",
        "badge",
        "size_bytes",
        "drill_result",
        "expires_at",
        "created_at",
    )
    list_filter = ("status", "kind", "engine")
    search_fields = ("store__name", "object_key")
    list_select_related = ("store",)
    raw_id_fields = ("store", "tenant", "created_by")
    inlines = [StoreBackupEventInline]
    actions = ["back_up_now"]
    readonly_fields = tuple(
        f.name for f in StoreBackup._meta.get_fields() if getattr(f, "concrete", False) and f.name != "id"
    )

    class Media:
        css = {"all": ["css/status-colours.css"]}

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # a backup is a Job's result, never typed in

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # its objects go through expiry, which keeps the row as history

    @admin.display(description="Status", ordering="status")
    def badge(self, backup: StoreBackup) -> str:
        return format_html(
            '<span class="admin-status-badge" data-status-colour="backup-{}">{}</span>',
            backup.status,
            backup.get_status_display(),
        )

    @admin.action(description="Back up these backups' stores now", permissions=["change"])
    def back_up_now(self, request: HttpRequest, queryset: QuerySet[StoreBackup]) -> None:
        for store in {backup.store for backup in queryset}:
            try:
                backup = backup_request(store=store, actor=request.user)
            except ApplicationError as exc:
                self.message_user(request, f"{store.name}: {exc.message}", messages.WARNING)
            else:
                self.message_user(request, f"{store.name}: backup #{backup.pk} queued.", messages.SUCCESS)
