"""Writes for tenants and stores. Every interface (admin, pages, API) calls these and nothing else."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.text import slugify

from provisioning.choices import RunKind, RunStatus
from provisioning.engines import ENGINES
from provisioning.models import ProvisioningRun
from provisioning.services import provisioning_run_create, run_transition
from stores.choices import MembershipRole, StoreEventKind, StoreStatus
from stores.exceptions import (
    AccountExists,
    EmailInvalid,
    EngineUnavailable,
    InvalidStoreState,
    PlanLimitReached,
    StoreNameInvalid,
    StoreNameTaken,
    TenantInvalid,
)
from stores.launch_guards import (
    email_verification_require,
    email_verification_start,
    platform_capacity_require,
)
from stores.models import Membership, Plan, Store, StoreEvent, Tenant
from stores.selectors import tenant_live_store_count
from stores.transitions import store_transition
from stores.validators import (
    host_for_store,
    namespace_for_store,
    release_name_for_store,
    validate_account_email,
    validate_store_name,
)


def tenant_create(*, name: str, plan: Plan | None = None, owner: Any = None) -> Tenant:
    """Create a tenant on `plan` (default plan if omitted) with a unique slug; `owner` becomes its owner."""
    name = name.strip()
    if not name:
        raise TenantInvalid(
            "Organisation name is required.", fields={"organisation": ["This field is required."]}
        )
    plan = plan or Plan.objects.filter(is_default=True).first() or Plan.objects.order_by("max_stores").first()
    if plan is None:
        raise InvalidStoreState("No plan exists yet; create one in the admin first.")
    base_slug = slugify(name)[:50] or "tenant"
    slug, counter = base_slug, 1
    with transaction.atomic():
        while Tenant.objects.filter(slug=slug).exists():
            counter += 1
            slug = f"{base_slug}-{counter}"
        tenant = Tenant(name=name, slug=slug, plan=plan)
        tenant.full_clean()
        tenant.save()
        if owner is not None:
            Membership.objects.create(user=owner, tenant=tenant, role=MembershipRole.OWNER)
    return tenant


def user_signup(
    *, email: str, password: str, organisation: str, verification_base_url: str | None = None
) -> Any:
    """Create a user (username = email), a tenant on the default plan and the owner membership.

    With `verification_base_url` (the signup page's site) the e-mail must be confirmed through the
    mailed link before the account launches a store; accounts made by operators skip that."""
    user_model = get_user_model()
    email = user_model.objects.normalize_email(email.strip()).lower()
    try:
        validate_account_email(email)
    except ValidationError as exc:
        raise EmailInvalid(exc.messages[0], fields={"email": exc.messages}) from exc
    exists = AccountExists(
        "An account with this email already exists.",
        fields={"email": ["An account with this email already exists. Log in instead."]},
    )
    try:
        with transaction.atomic():
            if user_model.objects.filter(username__iexact=email).exists():
                raise exists
            user = user_model.objects.create_user(username=email, email=email, password=password)
            tenant_create(name=organisation, owner=user)
            if verification_base_url is not None:
                email_verification_start(user=user, base_url=verification_base_url)
    except IntegrityError:
        # Two signups with one e-mail at once: both saw no account, the second insert hit the
        # unique username. Anything else (a slug race) is not this error and propagates.
        if user_model.objects.filter(username__iexact=email).exists():
            raise exists from None
        raise
    return user


def _store_public_url(name: str) -> str:
    return f"{settings.STORE_URL_SCHEME}://{host_for_store(name, settings.STORE_BASE_DOMAIN)}/"


def store_create_check(*, tenant: Tenant, name: Any, engine: Any) -> Store | None:
    """Validate a store request without writing: raises what `store_create` would raise, and returns
    the tenant's existing live store of that name (the idempotent case), else None.

    Forms call it for immediate feedback; `store_create` calls it again under the tenant lock.
    """
    try:
        validate_store_name(name)
    except ValidationError as exc:
        raise StoreNameInvalid(exc.messages[0], fields={"name": exc.messages}) from exc
    if engine not in ENGINES:
        choices = ", ".join(sorted(ENGINES))
        raise EngineUnavailable(
            f"Unknown engine {engine!r}; choose one of: {choices}.",
            fields={"engine": [f"Choose one of: {choices}."]},
        )
    existing = _live_store_named(name)
    if existing is not None:
        return _existing_or_conflict(existing, tenant=tenant, engine=engine)
    platform_capacity_require()
    limit = tenant.plan.max_stores
    if tenant_live_store_count(tenant=tenant) >= limit:
        raise PlanLimitReached(
            f"Your plan “{tenant.plan.name}” allows {limit} store{'s' if limit != 1 else ''}; "
            "delete one or upgrade your plan.",
        )
    return None


def store_create(*, tenant: Tenant, name: Any, engine: Any, actor: Any = None) -> tuple[Store, bool]:
    """Request a new store; returns (store, created).

    Idempotent: the same tenant asking again for a live store of the same name gets that store back
    with created=False. Another tenant's live name is a conflict; the plan's store limit is enforced.
    """
    email_verification_require(user=actor)
    with transaction.atomic():
        # The tenant row lock serialises this tenant's creates, so the plan limit cannot be overrun by
        # two requests that both counted before either inserted.
        locked_tenant = Tenant.objects.select_for_update().select_related("plan").get(pk=tenant.pk)
        existing = store_create_check(tenant=locked_tenant, name=name, engine=engine)
        if existing is not None:
            return existing, False
        try:
            with transaction.atomic():
                store = Store.objects.create(
                    tenant=locked_tenant,
                    name=name,
                    engine=engine,
                    namespace=namespace_for_store(name),
                    release_name=release_name_for_store(name),
                    public_url=_store_public_url(name),
                    status_reason="Queued: waiting for a worker to start provisioning.",
                    created_by=actor if getattr(actor, "pk", None) else None,
                )
        except IntegrityError:
            # Another tenant inserted the same live name between our check and our insert.
            existing = _live_store_named(name)
            if existing is None:
                raise
            return _existing_or_conflict(existing, tenant=locked_tenant, engine=engine), False
        StoreEvent.objects.create(
            store=store,
            kind=StoreEventKind.TRANSITION,
            new_status=StoreStatus.REQUESTED,
            reason="Store requested.",
            actor=store.created_by,
        )
        provisioning_run_create(store=store, kind=RunKind.PROVISION, requested_by=actor)
    return store, True


def _live_store_named(name: str) -> Store | None:
    return Store.objects.exclude(status=StoreStatus.DELETED).filter(name=name).first()


def _existing_or_conflict(existing: Store, *, tenant: Tenant, engine: str) -> Store:
    if existing.tenant_id != tenant.pk:
        raise StoreNameTaken(
            f"The name “{existing.name}” is already taken. Choose another name.",
            fields={"name": [f"The name “{existing.name}” is already taken."]},
        )
    if existing.engine != engine:
        raise StoreNameTaken(
            f"You already have a {existing.get_engine_display()} store called “{existing.name}”.",
            fields={"name": [f"You already have a store called “{existing.name}”."]},
        )
    return existing


def store_request_teardown(*, store: Store, actor: Any = None) -> Store:
    """Ask for a store's teardown. Repeating it is harmless; a queued provision is cancelled, and a
    running one finishes first (the teardown run waits for it)."""
    with transaction.atomic():
        locked = Store.objects.select_for_update().get(pk=store.pk)
        if locked.status in {StoreStatus.DELETING, StoreStatus.DELETED}:
            return locked
        moved = _transition(locked, StoreStatus.DELETING, "Teardown requested.", actor)
        if not moved:
            raise InvalidStoreState(f"The store cannot be deleted while it is {locked.status}.")
        for queued in ProvisioningRun.objects.filter(
            store=locked, kind=RunKind.PROVISION, status=RunStatus.QUEUED
        ).values_list("pk", flat=True):
            run_transition(run_id=queued, to=RunStatus.CANCELLED, error="Cancelled: teardown was requested.")
        if not ProvisioningRun.objects.filter(
            store=locked, kind=RunKind.TEARDOWN, status__in=[RunStatus.QUEUED, RunStatus.RUNNING]
        ).exists():
            provisioning_run_create(store=locked, kind=RunKind.TEARDOWN, requested_by=actor)
    locked.refresh_from_db()
    return locked


def store_retry(*, store: Store, actor: Any = None) -> ProvisioningRun:
    """Retry the operation that failed: provisioning again, or a teardown that did not finish."""
    with transaction.atomic():
        locked = Store.objects.select_for_update().get(pk=store.pk)
        if locked.status != StoreStatus.FAILED:
            raise InvalidStoreState(f"Only a failed store can be retried; this one is {locked.status}.")
        last_run = ProvisioningRun.objects.filter(store=locked).order_by("-created_at", "-id").first()
        if last_run is not None and last_run.kind == RunKind.TEARDOWN:
            _transition(locked, StoreStatus.DELETING, "Teardown retried.", actor)
            return provisioning_run_create(store=locked, kind=RunKind.TEARDOWN, requested_by=actor)
        _transition(locked, StoreStatus.REQUESTED, "Provisioning retried.", actor)
        return provisioning_run_create(store=locked, kind=RunKind.PROVISION, requested_by=actor)


def _transition(store: Store, to: StoreStatus, reason: str, actor: Any) -> bool:
    return store_transition(store_id=store.pk, to=to, reason=reason, actor=actor)
