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


STORE_ACTIVE_STATUSES = frozenset({StoreStatus.REQUESTED, StoreStatus.PROVISIONING, StoreStatus.DELETING})
STORE_TERMINAL_STATUSES = frozenset({StoreStatus.DELETED})

STORE_ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    StoreStatus.REQUESTED: frozenset({StoreStatus.PROVISIONING, StoreStatus.DELETING, StoreStatus.FAILED}),
    # DELETING from PROVISIONING: a merchant may delete while the install still runs; teardown waits.
    StoreStatus.PROVISIONING: frozenset({StoreStatus.READY, StoreStatus.FAILED, StoreStatus.DELETING}),
    # REQUESTED from READY: the reconciler re-provisions a store whose release or namespace vanished.
    StoreStatus.READY: frozenset({StoreStatus.DELETING, StoreStatus.REQUESTED, StoreStatus.DEGRADED}),
    # The watcher moves a store between READY and DEGRADED as its workloads' readiness changes.
    StoreStatus.DEGRADED: frozenset({StoreStatus.READY, StoreStatus.DELETING, StoreStatus.REQUESTED}),
    StoreStatus.FAILED: frozenset({StoreStatus.REQUESTED, StoreStatus.DELETING}),
    StoreStatus.DELETING: frozenset({StoreStatus.DELETED, StoreStatus.FAILED}),
    StoreStatus.DELETED: frozenset(),
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
