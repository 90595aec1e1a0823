"""How stores look on the merchant pages: status colours, the step timeline and engine offers.

Pure functions over rows the views already fetched; nothing here queries or writes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from stores.choices import (
    DOMAIN_ACTIVE_STATUSES,
    STORE_ACTIVE_STATUSES,
    DomainStatus,
    StoreEventKind,
    StoreStatus,
)
from stores.engines import ENGINE_CATALOGUE, EngineSpec, engine_spec
from stores.models import Plan, PlanResources, Store, StoreEvent

# The one status-to-colour map of the merchant pages (badges, timeline dots). Each colour keeps white
# text above 4.5:1 contrast.
STATUS_COLOURS: dict[str, str] = {
    StoreStatus.REQUESTED: "#4b5563",
    StoreStatus.PROVISIONING: "#1d4ed8",
    StoreStatus.READY: "#15803d",
    StoreStatus.DEGRADED: "#a16207",
    StoreStatus.FAILED: "#b91c1c",
    StoreStatus.DELETING: "#b45309",
    StoreStatus.DELETED: "#374151",
    StoreStatus.SUSPENDING: "#6d28d9",
    StoreStatus.SUSPENDED: "#5b21b6",
    StoreStatus.RESUMING: "#6d28d9",
    StoreStatus.RESTORING: "#6d28d9",
}

# What each status means to a merchant, shown next to the badge.
STATUS_HINTS: dict[str, str] = {
    StoreStatus.REQUESTED: "Your store is queued; a worker picks it up in a moment.",
    StoreStatus.PROVISIONING: "We are creating your store's space, credentials and software.",
    StoreStatus.READY: "Your store is live.",
    StoreStatus.DEGRADED: "Your store is live, but part of it is not answering; the reason is below.",
    StoreStatus.FAILED: "Something went wrong. The reason is below; you can retry.",
    StoreStatus.DELETING: "We are removing your store, its database and its files.",
    StoreStatus.DELETED: "This store and all its data are gone. Its name is free again.",
    StoreStatus.SUSPENDING: "We are pausing your store; its data stays as it is.",
    StoreStatus.SUSPENDED: "Your store is paused: visitors see a notice, its data is kept. The reason is below.",
    StoreStatus.RESUMING: "We are bringing your store back.",
    StoreStatus.RESTORING: "We are loading a backup into your store (a safety backup was taken first).",
}

PROVISION_STEPS: tuple[tuple[str, str], ...] = (
    ("requested", "Requested"),
    ("namespace", "Private space created"),
    ("secrets", "Admin credentials generated"),
    ("helm", "Software installed"),
    ("ready", "Store ready"),
)
TEARDOWN_STEPS: tuple[tuple[str, str], ...] = (
    ("deleting", "Deletion requested"),
    ("helm-uninstall", "Software removed"),
    ("namespace-delete", "Data and volumes deleted"),
    ("deleted", "Store deleted"),
)

STEP_LABELS: dict[str, str] = {
    **dict(PROVISION_STEPS),
    **dict(TEARDOWN_STEPS),
    "credentials-revealed": "Admin credentials revealed",
    "final-backup": "Final backup",
    "helm-settle": "Interrupted install settled",
}


def is_changing(status: str) -> bool:
    """True while the store moves on its own, i.e. while a page should keep refreshing its status."""
    return status in STORE_ACTIVE_STATUSES


@dataclass(frozen=True)
class TimelineStep:
    key: str
    label: str
    state: str  # "done", "current", "failed" or "pending"
    at: datetime | None = None
    detail: str = ""


def _step_time(events: list[StoreEvent], key: str) -> StoreEvent | None:
    for event in events:
        if event.kind == StoreEventKind.STEP and event.step == key:
            return event
        if event.kind == StoreEventKind.TRANSITION and event.new_status == key:
            return event
    return None


def _is_teardown(store: Store, events: list[StoreEvent]) -> bool:
    if store.status in {StoreStatus.DELETING, StoreStatus.DELETED}:
        return True
    if store.status == StoreStatus.FAILED:
        failed = [e for e in events if e.kind == StoreEventKind.TRANSITION and e.new_status == "failed"]
        return bool(failed) and failed[-1].old_status == StoreStatus.DELETING
    return False


def store_timeline(*, store: Store, events: Iterable[StoreEvent]) -> list[TimelineStep]:
    """The steps of the store's current attempt (provisioning, or teardown once deletion began).

    Only events since the attempt started count, so a retry starts a fresh timeline while the full
    history stays in `events`.
    """
    history = list(events)
    teardown = _is_teardown(store, history)
    steps, start_status = (
        (TEARDOWN_STEPS, StoreStatus.DELETING) if teardown else (PROVISION_STEPS, "requested")
    )
    starts = [
        i
        for i, e in enumerate(history)
        if e.kind == StoreEventKind.TRANSITION and e.new_status == start_status
    ]
    attempt = history[starts[-1] :] if starts else history
    timeline: list[TimelineStep] = []
    blocked = False
    for key, label in steps:
        event = _step_time(attempt, key)
        if event is not None and not blocked:
            timeline.append(TimelineStep(key, label, "done", event.created_at))
            continue
        if not blocked:
            blocked = True
            if store.status == StoreStatus.FAILED:
                timeline.append(TimelineStep(key, label, "failed", store.status_changed_at))
                continue
            if is_changing(store.status):
                timeline.append(TimelineStep(key, label, "current"))
                continue
        timeline.append(TimelineStep(key, label, "pending"))
    return timeline


def event_label(event: StoreEvent) -> str:
    """One history line's title in plain words."""
    if event.kind == StoreEventKind.TRANSITION:
        return f"Status: {StoreStatus(event.new_status).label}" if event.new_status else "Status changed"
    return STEP_LABELS.get(event.step, event.step.replace("-", " ").capitalize() or "Event")


def failure_in_plain_words(reason: str) -> str:
    """The reason a store failed, without the machinery around it, or a generic line when empty."""
    text = (reason or "").strip()
    if not text:
        return "The last attempt did not finish. Retrying usually fixes a passing problem."
    return text if len(text) <= 600 else f"{text[:597]}…"


@dataclass(frozen=True)
class EngineOffer:
    spec: EngineSpec
    resources: PlanResources | None


def engine_offers(*, plan: Plan | None, resources: Iterable[PlanResources] = ()) -> list[EngineOffer]:
    """Each engine with what it includes and the resources the plan gives one store of it."""
    by_engine = {r.engine: r for r in resources if plan is None or r.plan_id == plan.pk}
    return [EngineOffer(spec=spec, resources=by_engine.get(key)) for key, spec in ENGINE_CATALOGUE.items()]


def store_admin_url(store: Store) -> str:
    """Where the merchant logs in to the store's own admin."""
    return f"{store.public_url}{engine_spec(store.engine).admin_path}"


# Custom domains' badge colours (static/css/status-colours.css holds them as domain-<status>).
DOMAIN_STATUS_COLOURS: dict[str, str] = {
    DomainStatus.PENDING_VERIFICATION: "#4b5563",
    DomainStatus.VERIFIED: "#1d4ed8",
    DomainStatus.ISSUING: "#1d4ed8",
    DomainStatus.ACTIVE: "#15803d",
    DomainStatus.FAILED: "#b91c1c",
    DomainStatus.REMOVED: "#374151",
}

DOMAIN_STATUS_HINTS: dict[str, str] = {
    DomainStatus.PENDING_VERIFICATION: "Create the records below; we check them regularly, or press Check now.",
    DomainStatus.VERIFIED: "Ownership proven; we are adding the domain to your store.",
    DomainStatus.ISSUING: "Your domain is routed; its certificate is being issued.",
    DomainStatus.ACTIVE: "Your store answers here over HTTPS; the certificate renews by itself.",
    DomainStatus.FAILED: "The reason is below; fix it, then press Check now.",
    DomainStatus.REMOVED: "Removed.",
}


def domain_is_changing(status: str) -> bool:
    """True while a domain moves on its own, i.e. while the Domains section should keep refreshing."""
    return status in DOMAIN_ACTIVE_STATUSES
