"""Status and kind vocabularies for tenants and stores, with the store's allowed transitions."""

from django.db import models


class Engine(models.TextChoices):
    WOOCOMMERCE = "woocommerce", "WooCommerce"
    MEDUSA = "medusa", "Medusa"


class MembershipRole(models.TextChoices):
    OWNER = "owner", "Owner"
    MEMBER = "member", "Member"


class StoreStatus(models.TextChoices):
    REQUESTED = "requested", "Requested"  # accepted; a provisioning run is queued
    PROVISIONING = "provisioning", "Provisioning"  # a worker is creating namespace, secret and release
    READY = "ready", "Ready"  # the release is deployed and the store answers at its URL
    DEGRADED = "degraded", "Degraded"  # was ready; a workload stopped being ready (status_reason: why)
    FAILED = "failed", "Failed"  # the last provision or teardown failed; status_reason says why
    DELETING = "deleting", "Deleting"  # teardown is queued or running
    DELETED = "deleted", "Deleted"  # release, namespace and volumes are gone; the name is free again
    # A run scales the workloads to zero and routes to the paused page.
    SUSPENDING = "suspending", "Suspending"
    SUSPENDED = "suspended", "Suspended"  # workloads at zero, volumes kept, the paused page answers
    RESUMING = "resuming", "Resuming"  # a run brings the workloads back and routes to them again
    RESTORING = "restoring", "Restoring"  # a backup is being loaded into the store (safety backup taken)


class SuspensionSource(models.TextChoices):
    """Who suspended a store decides who may resume it (stores.suspension)."""

    TENANT = "tenant", "The organisation"  # an owner (page or partner API); they may resume it
    STAFF = "staff", "Platform staff"  # only staff resume it
    BILLING = "billing", "Unpaid account"  # resumed when the tenant's unpaid flag is cleared


STORE_ACTIVE_STATUSES = frozenset(
    {
        StoreStatus.REQUESTED,
        StoreStatus.PROVISIONING,
        StoreStatus.DELETING,
        StoreStatus.SUSPENDING,
        StoreStatus.RESUMING,
        StoreStatus.RESTORING,
    }
)
STORE_TERMINAL_STATUSES = frozenset({StoreStatus.DELETED})

STORE_ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    StoreStatus.REQUESTED: frozenset({StoreStatus.PROVISIONING, StoreStatus.DELETING, StoreStatus.FAILED}),
    # DELETING from PROVISIONING: a merchant may delete while the install still runs; teardown waits.
    # SUSPENDED from PROVISIONING: a store re-provisioned while it is to stay suspended (the retry of a
    # failed suspend, say) is installed with `suspended: true` and lands suspended, not ready.
    # RESTORING from PROVISIONING: a store created from a backup loads it once installed, and is not
    # announced ready before its data is in.
    StoreStatus.PROVISIONING: frozenset(
        {
            StoreStatus.READY,
            StoreStatus.FAILED,
            StoreStatus.DELETING,
            StoreStatus.SUSPENDED,
            StoreStatus.RESTORING,
        }
    ),
    # REQUESTED from READY: the reconciler re-provisions a store whose release or namespace vanished.
    StoreStatus.READY: frozenset(
        {
            StoreStatus.DELETING,
            StoreStatus.REQUESTED,
            StoreStatus.DEGRADED,
            StoreStatus.SUSPENDING,
            StoreStatus.RESTORING,
        }
    ),
    # The watcher moves a store between READY and DEGRADED as its workloads' readiness changes.
    StoreStatus.DEGRADED: frozenset(
        {
            StoreStatus.READY,
            StoreStatus.DELETING,
            StoreStatus.REQUESTED,
            StoreStatus.SUSPENDING,
            StoreStatus.RESTORING,
        }
    ),
    # DELETING from the suspension statuses: teardown waits for the run in flight, as from PROVISIONING.
    StoreStatus.SUSPENDING: frozenset({StoreStatus.SUSPENDED, StoreStatus.FAILED, StoreStatus.DELETING}),
    # No REQUESTED from SUSPENDED: the watcher and the reconciler never bring a suspended store back up.
    # No RESTORING either: a paused store is resumed first, then restored.
    StoreStatus.SUSPENDED: frozenset({StoreStatus.RESUMING, StoreStatus.DELETING}),
    StoreStatus.RESUMING: frozenset({StoreStatus.READY, StoreStatus.FAILED, StoreStatus.DELETING}),
    StoreStatus.FAILED: frozenset({StoreStatus.REQUESTED, StoreStatus.DELETING}),
    StoreStatus.DELETING: frozenset({StoreStatus.DELETED, StoreStatus.FAILED}),
    StoreStatus.DELETED: frozenset(),
    # A restore ends READY (loaded) or FAILED (reason says which step; the safety backup is listed).
    StoreStatus.RESTORING: frozenset({StoreStatus.READY, StoreStatus.FAILED}),
}


class StoreEventKind(models.TextChoices):
    TRANSITION = "transition", "Status change"  # old_status -> new_status
    STEP = "step", "Provisioning step"  # namespace, secret, helm install, ... inside a status
    AUDIT = "audit", "Audit"  # a person did something sensitive, e.g. revealed credentials


# A store that is up (its release deployed): credentials may be revealed, the watcher follows its health.
STORE_RUNNING_STATUSES = frozenset({StoreStatus.READY, StoreStatus.DEGRADED})


class DomainStatus(models.TextChoices):
    PENDING_VERIFICATION = "pending_verification", "Pending verification"  # waiting for the TXT record
    VERIFIED = "verified", "Verified"  # ownership proven; the store's release must route it next
    ISSUING = "issuing", "Issuing certificate"  # routed; cert-manager is issuing its certificate
    ACTIVE = "active", "Active"  # routed with a valid certificate
    FAILED = "failed", "Failed"  # verification timed out or issuance failed; status_reason says why
    REMOVED = "removed", "Removed"  # the merchant removed it; route and certificate go, the name is free


DOMAIN_ACTIVE_STATUSES = frozenset(
    {DomainStatus.PENDING_VERIFICATION, DomainStatus.VERIFIED, DomainStatus.ISSUING}
)
DOMAIN_TERMINAL_STATUSES = frozenset({DomainStatus.REMOVED})
# Ownership proven: these domains go into the store's helm values (Ingress host and TLS).
DOMAIN_ROUTED_STATUSES = frozenset({DomainStatus.VERIFIED, DomainStatus.ISSUING, DomainStatus.ACTIVE})

DOMAIN_ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    DomainStatus.PENDING_VERIFICATION: frozenset(
        {DomainStatus.VERIFIED, DomainStatus.FAILED, DomainStatus.REMOVED}
    ),
    DomainStatus.VERIFIED: frozenset({DomainStatus.ISSUING, DomainStatus.FAILED, DomainStatus.REMOVED}),
    # ACTIVE -> ISSUING never happens on renewal (cert-manager renews in place); FAILED from ISSUING
    # carries the Certificate's reason.
    DomainStatus.ISSUING: frozenset({DomainStatus.ACTIVE, DomainStatus.FAILED, DomainStatus.REMOVED}),
    # ACTIVE -> FAILED: the Certificate stopped being Ready (e.g. a renewal was refused).
    DomainStatus.ACTIVE: frozenset({DomainStatus.ISSUING, DomainStatus.FAILED, DomainStatus.REMOVED}),
    # "Check now" on a failed domain starts verification over.
    DomainStatus.FAILED: frozenset({DomainStatus.PENDING_VERIFICATION, DomainStatus.REMOVED}),
    DomainStatus.REMOVED: frozenset(),
}


class WebhookEventType(models.TextChoices):
    """What a partner's endpoint can subscribe to; each is sent when the store's status moves there."""

    STORE_REQUESTED = "store.requested", "Store requested"  # accepted, or queued again (retry, drift)
    STORE_READY = "store.ready", "Store ready"  # answering at its URL (also after recovering)
    STORE_FAILED = "store.failed", "Store failed"  # provisioning or teardown failed; status_reason says why
    STORE_DELETING = "store.deleting", "Store deleting"  # teardown requested
    STORE_DELETED = "store.deleted", "Store deleted"  # release, namespace and volumes are gone
    STORE_SUSPENDED = "store.suspended", "Store suspended"  # workloads at zero; status_reason says who/why
    STORE_RESUMED = "store.resumed", "Store resumed"  # back up after a suspension (sent instead of ready)
    DOMAIN_ACTIVE = "domain.active", "Domain active"  # a custom domain is routed with a valid certificate
    # Verification or issuance failed; status_reason says why.
    DOMAIN_FAILED = "domain.failed", "Domain failed"
    BACKUP_COMPLETED = "backup.completed", "Backup completed"  # stored in the bucket; the drill follows
    BACKUP_VERIFIED = "backup.verified", "Backup verified"  # its restore drill passed
    BACKUP_FAILED = "backup.failed", "Backup failed"  # the backup or its drill failed; the reason says why


# The store statuses that announce themselves to webhooks (provisioning and degraded do not: they are
# not in the partner contract of issue 21).
WEBHOOK_EVENT_FOR_STATUS: dict[str, WebhookEventType] = {
    StoreStatus.REQUESTED: WebhookEventType.STORE_REQUESTED,
    StoreStatus.READY: WebhookEventType.STORE_READY,
    StoreStatus.FAILED: WebhookEventType.STORE_FAILED,
    StoreStatus.DELETING: WebhookEventType.STORE_DELETING,
    StoreStatus.DELETED: WebhookEventType.STORE_DELETED,
    StoreStatus.SUSPENDED: WebhookEventType.STORE_SUSPENDED,
}
# The custom-domain statuses that announce themselves (the others are steps on the way there).
WEBHOOK_EVENT_FOR_DOMAIN_STATUS: dict[str, WebhookEventType] = {
    DomainStatus.ACTIVE: WebhookEventType.DOMAIN_ACTIVE,
    DomainStatus.FAILED: WebhookEventType.DOMAIN_FAILED,
}
# A move that announces something else than its target status: ready after resuming is `store.resumed`.
WEBHOOK_EVENT_FOR_MOVE: dict[tuple[str, str], WebhookEventType] = {
    (StoreStatus.RESUMING, StoreStatus.READY): WebhookEventType.STORE_RESUMED,
}


class WebhookDeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"  # waiting for its next attempt (next_attempt_at)
    SUCCEEDED = "succeeded", "Delivered"  # the endpoint answered 2xx
    FAILED = "failed", "Gave up"  # retries ran out (24 h) or the endpoint was disabled; last_error says why


WEBHOOK_DELIVERY_ACTIVE_STATUSES = frozenset({WebhookDeliveryStatus.PENDING})
WEBHOOK_DELIVERY_TERMINAL_STATUSES = frozenset(
    {WebhookDeliveryStatus.SUCCEEDED, WebhookDeliveryStatus.FAILED}
)
# A resend moves a finished delivery back to pending; nothing else leaves a terminal status.
WEBHOOK_DELIVERY_ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    WebhookDeliveryStatus.PENDING: frozenset({WebhookDeliveryStatus.SUCCEEDED, WebhookDeliveryStatus.FAILED}),
    WebhookDeliveryStatus.SUCCEEDED: frozenset({WebhookDeliveryStatus.PENDING}),
    WebhookDeliveryStatus.FAILED: frozenset({WebhookDeliveryStatus.PENDING}),
}


class EngineVersionState(models.TextChoices):
    AVAILABLE = "available", "Available"  # may be rolled out to stores
    DEFAULT = "default", "Default"  # what new stores of the engine get (one per engine)
    RETIRED = "retired", "Retired"  # no new rollouts to it; stores on it keep running


class RolloutStatus(models.TextChoices):
    PENDING = "pending", "Pending"  # created; nothing upgraded yet
    RUNNING = "running", "Running"  # upgrading batch by batch
    PAUSED = "paused", "Paused"  # staff paused it; the batch in flight finishes, no new batch starts
    SUCCEEDED = "succeeded", "Succeeded"  # every selected store reached the target
    STOPPED = "stopped", "Stopped"  # a batch failed over the threshold; failed stores are rolled back
    CANCELLED = "cancelled", "Cancelled"  # staff cancelled it; stores already upgraded stay upgraded


ROLLOUT_TERMINAL_STATUSES = frozenset(
    {RolloutStatus.SUCCEEDED, RolloutStatus.STOPPED, RolloutStatus.CANCELLED}
)
ROLLOUT_ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    RolloutStatus.PENDING: frozenset({RolloutStatus.RUNNING, RolloutStatus.CANCELLED}),
    RolloutStatus.RUNNING: frozenset(
        {RolloutStatus.PAUSED, RolloutStatus.SUCCEEDED, RolloutStatus.STOPPED, RolloutStatus.CANCELLED}
    ),
    RolloutStatus.PAUSED: frozenset({RolloutStatus.RUNNING, RolloutStatus.CANCELLED}),
    RolloutStatus.SUCCEEDED: frozenset(),
    RolloutStatus.STOPPED: frozenset(),
    RolloutStatus.CANCELLED: frozenset(),
}


class RolloutItemStatus(models.TextChoices):
    PENDING = "pending", "Waiting for its batch"
    # Backups are configured: a verified backup of the store is taken before it is upgraded.
    BACKING_UP = "backing_up", "Backing up"
    UPGRADING = "upgrading", "Upgrading"  # its provision run to the target version is queued or running
    SUCCEEDED = "succeeded", "Upgraded"  # ready on the target version
    FAILED = "failed", "Failed"  # the upgrade failed; reason says why
    ROLLING_BACK = "rolling_back", "Rolling back"  # being put back on its previous version
    ROLLED_BACK = "rolled_back", "Rolled back"  # ready again on its previous version
    SKIPPED = "skipped", "Skipped"  # was not ready when its batch started (or the rollout was cancelled)


class RolloutSelection(models.TextChoices):
    ALL = "all", "All stores of the engine"
    PLAN = "plan", "Stores on one plan"
    TENANT = "tenant", "Stores of one organisation"
    LIST = "list", "A list of store names"


class BackupStatus(models.TextChoices):
    REQUESTED = "requested", "Requested"  # accepted; a backup Job is queued
    RUNNING = "running", "Running"  # the backup Job runs in the store's namespace
    COMPLETED = "completed", "Completed"  # objects in the bucket, size and checksum recorded; drill pending
    VERIFIED = "verified", "Verified"  # a restore drill into a throwaway namespace passed
    FAILED = "failed", "Failed"  # the backup (or its drill) failed; failure_reason says why
    EXPIRED = "expired", "Expired"  # past retention; its objects were deleted from the bucket


# The backup statuses that announce themselves to webhooks.
WEBHOOK_EVENT_FOR_BACKUP_STATUS: dict[str, WebhookEventType] = {
    BackupStatus.COMPLETED: WebhookEventType.BACKUP_COMPLETED,
    BackupStatus.VERIFIED: WebhookEventType.BACKUP_VERIFIED,
    BackupStatus.FAILED: WebhookEventType.BACKUP_FAILED,
}


class BackupKind(models.TextChoices):
    MANUAL = "manual", "Manual"  # "Back up now" (page, API, admin)
    SCHEDULED = "scheduled", "Scheduled"  # the plan's schedule (Celery beat)
    SAFETY = "safety", "Safety"  # taken right before a restore overwrites the store
    FINAL = "final", "Final"  # taken when the store is deleted; kept for the grace period
    UPGRADE = (
        "upgrade",
        "Before an upgrade",
    )  # a rollout's verified backup, taken before it upgrades the store


BACKUP_ACTIVE_STATUSES = frozenset({BackupStatus.REQUESTED, BackupStatus.RUNNING})
BACKUP_TERMINAL_STATUSES = frozenset({BackupStatus.EXPIRED})
# Objects in the bucket that a restore can load.
BACKUP_RESTORABLE_STATUSES = frozenset({BackupStatus.COMPLETED, BackupStatus.VERIFIED})

BACKUP_ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    BackupStatus.REQUESTED: frozenset({BackupStatus.RUNNING, BackupStatus.FAILED}),
    BackupStatus.RUNNING: frozenset({BackupStatus.COMPLETED, BackupStatus.FAILED}),
    # FAILED from COMPLETED: the drill could not restore it, so nobody should rely on it.
    BackupStatus.COMPLETED: frozenset({BackupStatus.VERIFIED, BackupStatus.FAILED, BackupStatus.EXPIRED}),
    BackupStatus.VERIFIED: frozenset({BackupStatus.EXPIRED}),
    # A failed backup's partial objects go at expiry too.
    BackupStatus.FAILED: frozenset({BackupStatus.EXPIRED}),
    BackupStatus.EXPIRED: frozenset(),
}
