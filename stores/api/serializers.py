"""Shapes of API requests and responses. Input serializers only parse; the services decide.

Nothing here writes: status, tenant and namespace are never input fields, and an input serializer
rejects any field it does not declare instead of silently dropping it.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from provisioning.choices import ClusterHealth
from provisioning.models import ProvisioningRun
from stores.choices import BackupKind, BackupStatus, DomainStatus, Engine, StoreStatus
from stores.domains import domain_required_records
from stores.models import Plan, Store, StoreBackup, StoreDomain, StoreEvent
from stores.validators import STORE_NAME_MAX_LENGTH, STORE_NAME_MIN_LENGTH


class StrictInputSerializer(serializers.Serializer):
    """Refuses unknown keys (e.g. `status` or `tenant`) with a message naming the accepted ones."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                accepted = ", ".join(sorted(self.fields))
                raise serializers.ValidationError(
                    {
                        name: [f"Unknown or read-only field; this endpoint accepts only: {accepted}."]
                        for name in unknown
                    }
                )
        return super().to_internal_value(data)


@extend_schema_field(
    {
        "type": "string",
        "minLength": STORE_NAME_MIN_LENGTH,
        "maxLength": STORE_NAME_MAX_LENGTH,
        "pattern": "^[a-z0-9]([a-z0-9-]*[a-z0-9])?$",
    }
)
class StoreNameField(serializers.CharField):
    """A store name, documented with the shape the shared validator enforces (reserved names aside)."""

    def to_internal_value(self, data: Any) -> str:
        # DRF's CharField would turn 12345 into "12345"; the schema promises a string, so a number is a 400.
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StoreCreateSerializer(StrictInputSerializer):
    # Parsed here (a non-empty string), checked once by store_create with the shared validator. No
    # trimming: " shop" must get the validator's whitespace message, not be silently changed.
    name = StoreNameField(
        trim_whitespace=False,
        help_text="Lowercase letters, digits and hyphens, 3-57 characters; becomes the store's subdomain.",
    )
    engine = serializers.ChoiceField(choices=Engine.choices, help_text="Which shop software to run.")


class StoreListFilterSerializer(serializers.Serializer):
    """Query parameters of the store list; an unknown status or engine is a 400, not an empty page."""

    status = serializers.ChoiceField(choices=StoreStatus.choices, required=False)
    engine = serializers.ChoiceField(choices=Engine.choices, required=False)


class RunSerializer(serializers.ModelSerializer):
    class Meta:
        model = ProvisioningRun
        fields = ["id", "kind", "status", "attempt", "created_at", "started_at", "finished_at", "error"]
        read_only_fields = fields


class StoreSerializer(serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name="api:store-detail", lookup_field="name")
    latest_run = serializers.SerializerMethodField()
    cluster = serializers.SerializerMethodField(
        help_text="Where the store runs, and whether that cluster answers."
    )

    class Meta:
        model = Store
        fields = [
            "url",
            "name",
            "engine",
            "status",
            "status_reason",
            "public_url",
            "created_at",
            "status_changed_at",
            "ready_at",
            "deleted_at",
            "latest_run",
            "cluster",
            "suspension",
        ]
        read_only_fields = fields

    suspension = serializers.SerializerMethodField(
        help_text="While the store is to stay paused: by whom (tenant, staff, billing) and why; else null."
    )

    @extend_schema_field(
        {
            "type": "object",
            "nullable": True,
            "properties": {
                "source": {"type": "string", "enum": ["tenant", "staff", "billing"]},
                "reason": {"type": "string"},
                "suspended_at": {"type": "string", "format": "date-time"},
            },
        }
    )
    def get_suspension(self, store: Store) -> dict[str, Any] | None:
        if not store.suspension_source:
            return None
        at = store.suspended_at.isoformat().replace("+00:00", "Z") if store.suspended_at else None
        return {"source": store.suspension_source, "reason": store.suspension_reason, "suspended_at": at}

    @extend_schema_field(
        {
            "type": "object",
            "properties": {"name": {"type": "string"}, "reachable": {"type": "boolean"}},
            "required": ["name", "reachable"],
        }
    )
    def get_cluster(self, store: Store) -> dict[str, Any]:
        # Reachable unless its last check failed: the store's own status is kept while it is away.
        return {"name": store.cluster.name, "reachable": store.cluster.health != ClusterHealth.UNREACHABLE}

    @extend_schema_field(RunSerializer(allow_null=True))
    def get_latest_run(self, store: Store) -> dict[str, Any] | None:
        # The view prefetches runs newest first, so a page of stores costs one extra query, not one each.
        runs = getattr(store, "runs_newest_first", None)
        if runs is None:
            runs = list(store.runs.order_by("-created_at", "-id")[:1])
        return RunSerializer(runs[0]).data if runs else None


class StoreEventSerializer(serializers.ModelSerializer):
    # Blank on events that are not status changes (and old_status on the first event).
    old_status = serializers.ChoiceField(choices=StoreStatus.choices, allow_blank=True, read_only=True)
    new_status = serializers.ChoiceField(choices=StoreStatus.choices, allow_blank=True, read_only=True)
    actor = serializers.SerializerMethodField(help_text="Who caused it: a user, or the platform component.")

    class Meta:
        model = StoreEvent
        fields = ["kind", "old_status", "new_status", "step", "reason", "actor", "created_at"]
        read_only_fields = fields

    def get_actor(self, event: StoreEvent) -> str:
        if event.actor is not None:
            return event.actor.get_username()
        return event.actor_label


class CredentialsSerializer(serializers.Serializer):
    admin_url = serializers.URLField(read_only=True)
    username = serializers.CharField(read_only=True)
    email = serializers.CharField(read_only=True)
    password = serializers.CharField(read_only=True)


class PlanResourcesSerializer(serializers.Serializer):
    engine = serializers.CharField(read_only=True)
    cpu = serializers.CharField(read_only=True, help_text="Kubernetes CPU quantity per store.")
    memory = serializers.CharField(read_only=True, help_text="Kubernetes memory quantity per store.")
    storage = serializers.CharField(read_only=True, help_text="Persistent storage per store.")


class PlanSerializer(serializers.Serializer):
    name = serializers.CharField(read_only=True)
    max_stores = serializers.IntegerField(read_only=True)
    live_stores = serializers.IntegerField(read_only=True, help_text="Stores counting against the limit.")
    remaining_stores = serializers.IntegerField(read_only=True)
    resources = PlanResourcesSerializer(many=True, read_only=True)

    @staticmethod
    def for_plan(plan: Plan, *, live_stores: int) -> dict[str, Any]:
        """The plan as this serializer's input: limits plus the tenant's usage."""
        return {
            "name": plan.name,
            "max_stores": plan.max_stores,
            "live_stores": live_stores,
            "remaining_stores": max(plan.max_stores - live_stores, 0),
            "resources": list(plan.resources.order_by("engine")),
        }


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable machine-readable code, e.g. `name_taken`.")
    message = serializers.CharField(help_text="A sentence a person can act on.")

    def get_fields(self) -> dict[str, serializers.Field]:
        # `fields` cannot be a class attribute: it would shadow Serializer.fields.
        declared = super().get_fields()
        declared["fields"] = serializers.DictField(
            child=serializers.ListField(child=serializers.CharField()),
            help_text="Per-field messages; empty when the error is not about one field.",
        )
        return declared


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()


class DnsRecordSerializer(serializers.Serializer):
    type = serializers.CharField(read_only=True, help_text="TXT, CNAME, A or AAAA.")
    name = serializers.CharField(read_only=True)
    value = serializers.CharField(read_only=True)
    note = serializers.CharField(read_only=True)


class StoreDomainSerializer(serializers.ModelSerializer):
    status = serializers.ChoiceField(choices=DomainStatus.choices, read_only=True)
    records = serializers.SerializerMethodField(help_text="The DNS records to create, exactly as shown.")
    primary = serializers.BooleanField(
        source="is_primary",
        read_only=True,
        help_text="The shop calls itself by this domain; in effect while the domain is active.",
    )

    class Meta:
        model = StoreDomain
        fields = [
            "domain",
            "status",
            "status_reason",
            "status_changed_at",
            "records",
            "check_attempts",
            "last_checked_at",
            "next_check_at",
            "verified_at",
            "certificate_not_after",
            "primary",
            "created_at",
        ]
        read_only_fields = fields

    @extend_schema_field(DnsRecordSerializer(many=True))
    def get_records(self, domain: StoreDomain) -> list[dict[str, str]]:
        return DnsRecordSerializer(domain_required_records(domain), many=True).data


class StoreDomainAddSerializer(serializers.Serializer):
    # Parsed here, judged by stores.domains.domain_normalize: one set of refusal messages everywhere.
    domain = serializers.CharField(max_length=300, trim_whitespace=True, help_text="e.g. shop.example.com")


class ActivityQuerySerializer(StrictInputSerializer):
    pod = serializers.CharField(
        required=False, allow_blank=True, max_length=253, help_text="Only this pod's logs."
    )
    container = serializers.CharField(
        required=False, allow_blank=True, max_length=63, help_text="Only this container's logs."
    )
    lines = serializers.IntegerField(
        required=False, min_value=1, max_value=500, help_text="Log lines per container."
    )


class ActivityEventSerializer(serializers.Serializer):
    type = serializers.CharField()
    reason = serializers.CharField()
    message = serializers.CharField()
    object = serializers.CharField()
    count = serializers.IntegerField()
    last_seen = serializers.DateTimeField(allow_null=True)
    sentence = serializers.CharField(help_text="The event in plain words.")


class ActivityContainerSerializer(serializers.Serializer):
    name = serializers.CharField()
    ready = serializers.BooleanField()
    restarts = serializers.IntegerField()
    state = serializers.CharField()
    last_termination = serializers.CharField()
    oom_killed = serializers.BooleanField()


class ActivityPodSerializer(serializers.Serializer):
    name = serializers.CharField()
    phase = serializers.CharField()
    node = serializers.CharField()
    restarts = serializers.IntegerField()
    oom_kills = serializers.IntegerField()
    containers = ActivityContainerSerializer(many=True)


class ActivityLogSerializer(serializers.Serializer):
    pod = serializers.CharField()
    container = serializers.CharField()
    text = serializers.CharField()
    error = serializers.CharField(help_text="Why the log could not be read, with the cluster's own words.")


class ActivityUsageSerializer(serializers.Serializer):
    cpu_millicores = serializers.IntegerField(allow_null=True)
    memory_mib = serializers.IntegerField(allow_null=True)
    quota_cpu_millicores = serializers.IntegerField(allow_null=True)
    quota_memory_mib = serializers.IntegerField(allow_null=True)
    note = serializers.CharField(help_text='"not available: ..." when the cluster has no metrics-server.')


class ActivitySerializer(serializers.Serializer):
    events = ActivityEventSerializer(many=True)
    pods = ActivityPodSerializer(many=True)
    logs = ActivityLogSerializer(many=True)
    usage = ActivityUsageSerializer()
    problems = serializers.ListField(child=serializers.CharField())

    @staticmethod
    def for_activity(activity: Any) -> dict[str, Any]:
        """The StoreActivity as the serializer's input (usage and quota side by side)."""
        usage = activity.usage
        return {
            "events": activity.events,
            "pods": activity.pods,
            "logs": activity.logs,
            "usage": {
                "cpu_millicores": usage.cpu_millicores if usage else None,
                "memory_mib": usage.memory_mib if usage else None,
                "quota_cpu_millicores": activity.quota_cpu_millicores,
                "quota_memory_mib": activity.quota_memory_mib,
                "note": activity.usage_note,
            },
            "problems": activity.problems,
        }


class StoreSuspendSerializer(serializers.Serializer):
    """Why the organisation pauses its store (kept with the suspension, shown on its page)."""

    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class StoreBackupSerializer(serializers.ModelSerializer):
    """A backup as partners see it; every field read-only (status moves only through its writer)."""

    store = serializers.CharField(source="store.name", read_only=True)
    status = serializers.ChoiceField(choices=BackupStatus.choices, read_only=True)
    kind = serializers.ChoiceField(choices=BackupKind.choices, read_only=True)
    verified = serializers.SerializerMethodField()

    class Meta:
        model = StoreBackup
        fields = [
            "id",
            "store",
            "kind",
            "status",
            "status_reason",
            "failure_reason",
            "engine",
            "engine_version",
            "size_bytes",
            "checksum",
            "verified",
            "drill_result",
            "drill_seconds",
            "started_at",
            "finished_at",
            "expires_at",
            "created_at",
        ]
        read_only_fields = fields

    def get_verified(self, backup: StoreBackup) -> bool:
        return backup.status == BackupStatus.VERIFIED


class BackupRestoreIntoNewStoreSerializer(StrictInputSerializer):
    """A new store that starts with the backup's data; its engine is the backup's."""

    name = StoreNameField(
        trim_whitespace=False,
        help_text="The new store's name: lowercase letters, digits and hyphens, 3-57 characters.",
    )


class BackupRestoreSerializer(serializers.Serializer):
    """A restore command: into the backup's own store unless `target_store` names another store of
    the organisation; `confirm_name` must repeat the target's name (its data is replaced)."""

    target_store = serializers.CharField(required=False, allow_blank=False, max_length=63)
    confirm_name = serializers.CharField(max_length=63)
