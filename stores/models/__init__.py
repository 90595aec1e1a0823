"""The stores app's models, one module per concern; every model is importable from here."""

from stores.models.access import ApiTokenScope, EmailVerification, IdempotencyKey
from stores.models.backups import StoreBackup, StoreBackupEvent
from stores.models.domains import StoreDomain, StoreDomainEvent
from stores.models.observation import StoreObservation
from stores.models.store import Store, StoreEvent
from stores.models.tenancy import Membership, Plan, PlanResources, Tenant
from stores.models.versions import EngineVersion, Rollout, RolloutItem
from stores.models.webhooks import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookMessage

__all__ = [
    "ApiTokenScope",
    "EmailVerification",
    "EngineVersion",
    "IdempotencyKey",
    "Membership",
    "Plan",
    "PlanResources",
    "Rollout",
    "RolloutItem",
    "Store",
    "StoreBackup",
    "StoreBackupEvent",
    "StoreDomain",
    "StoreDomainEvent",
    "StoreEvent",
    "StoreObservation",
    "Tenant",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookMessage",
]
