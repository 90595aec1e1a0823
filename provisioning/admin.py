"""Staff admin for provisioning runs and the commands they ran: read-only, never deletable."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from provisioning.models import CommandRecord, ProvisioningRun


class ReadOnlyAdminMixin:
    """History is evidence: nobody edits or deletes it, not even superusers."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class CommandRecordInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = CommandRecord
    fields = ("started_at", "tool", "argv", "exit_code", "duration_seconds", "output")
    readonly_fields = fields
    extra = 0


# A run's life in columns, here and in the store page's list of runs.
RUN_LIFE_FIELDS = ("kind", "attempt", "status", "created_at", "told_busy_at", "started_at", "finished_at")


@admin.register(ProvisioningRun)
class ProvisioningRunAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("id", "store", *RUN_LIFE_FIELDS)
    list_filter = ("status", "kind")
    search_fields = ("store__name", "celery_task_id")
    list_select_related = ("store",)
    raw_id_fields = ("store", "requested_by")
    show_full_result_count = False
    inlines = [CommandRecordInline]


@admin.register(CommandRecord)
class CommandRecordAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("started_at", "run", "tool", "exit_code", "duration_seconds")
    list_filter = ("tool",)
    list_select_related = ("run",)
    raw_id_fields = ("run",)
    show_full_result_count = False
