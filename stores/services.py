"""Writes for tenants and accounts. A store's own lifecycle (create, teardown, retry and everything the
worker decides) is in stores/lifecycle.py."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.text import slugify

from stores.choices import MembershipRole
from stores.exceptions import AccountExists, EmailInvalid, InvalidStoreState, TenantInvalid
from stores.launch_guards import email_verification_start
from stores.models import Membership, Plan, Tenant
from stores.validators import validate_account_email


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
