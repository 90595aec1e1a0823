"""What must hold before a store launches, beyond the name and the plan: the account's e-mail is
confirmed, and the platform as a whole is under its store ceiling (issue 15: a script could sign up
and exhaust the cluster).

Confirmation is a signed, expiring link (django.core.signing) mailed at signup; local mode prints
it to the console, production sends it through SMTP.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse

from platform_site.errors import ApplicationError
from stores.choices import StoreStatus
from stores.models import EmailVerification, Store

logger = logging.getLogger(__name__)

_SALT = "stores.email-verification"


class EmailNotVerified(ApplicationError):
    code = "email_not_verified"
    http_status = 403


class VerificationLinkInvalid(ApplicationError):
    code = "invalid_link"
    http_status = 400


class PlatformAtCapacity(ApplicationError):
    code = "platform_capacity"
    http_status = 503


def email_verification_start(*, user: Any, base_url: str) -> EmailVerification:
    """Mark `user`'s e-mail unconfirmed and mail them a link (after the transaction commits)."""
    pending, _ = EmailVerification.objects.update_or_create(user=user, defaults={"email": user.email})
    token = signing.dumps({"user": user.pk, "email": user.email}, salt=_SALT)
    link = f"{base_url.rstrip('/')}{reverse('stores:verify_email', args=[token])}"
    days = settings.EMAIL_VERIFICATION_MAX_AGE_DAYS
    transaction.on_commit(
        lambda: send_mail(
            "Confirm your e-mail for Store Platform",
            f"Hello,\n\nConfirm your e-mail address to launch your first store:\n\n{link}\n\n"
            f"The link works for {days} day{'s' if days != 1 else ''}. If you did not sign up, ignore this e-mail.\n",
            None,
            [user.email],
        )
    )
    return pending


def email_verification_confirm(*, token: str) -> Any:
    """Confirm the e-mail a link was sent to; returns the user. Expired, forged or stale links (the
    address changed since) are refused."""
    try:
        data = signing.loads(token, salt=_SALT, max_age=settings.EMAIL_VERIFICATION_MAX_AGE_DAYS * 86400)
    except signing.SignatureExpired as exc:
        raise VerificationLinkInvalid(
            "This link has expired; ask for a new one from your dashboard."
        ) from exc
    except signing.BadSignature as exc:
        raise VerificationLinkInvalid(
            "This link is not valid; ask for a new one from your dashboard."
        ) from exc
    pending = EmailVerification.objects.select_related("user").filter(user_id=data.get("user")).first()
    if pending is None:
        user = get_user_model().objects.filter(pk=data.get("user")).first()
        if user is None:
            raise VerificationLinkInvalid("This link is not valid; ask for a new one from your dashboard.")
        return user  # confirmed already: following the link twice is harmless
    if pending.email != data.get("email") or pending.user.email != data.get("email"):
        raise VerificationLinkInvalid("This link was sent to another address; ask for a new one.")
    user = pending.user
    pending.delete()
    return user


def email_verification_pending(*, user: Any) -> bool:
    """True while `user` has not confirmed their e-mail."""
    return bool(getattr(user, "pk", None)) and EmailVerification.objects.filter(user_id=user.pk).exists()


def email_verification_require(*, user: Any) -> None:
    """Raise EmailNotVerified if `user` has not confirmed their e-mail yet."""
    if email_verification_pending(user=user):
        raise EmailNotVerified(
            "Confirm your e-mail address first: follow the link we sent you (you can ask for a new one "
            "on your dashboard)."
        )


def platform_capacity_require() -> None:
    """Raise PlatformAtCapacity when PLATFORM_MAX_LIVE_STORES stores are live across all tenants.

    Checked under each tenant's lock only, so concurrent launches of different tenants can pass it
    together: the ceiling is a guard for the cluster, not a count to the unit.
    """
    ceiling = settings.PLATFORM_MAX_LIVE_STORES
    if ceiling and Store.objects.exclude(status=StoreStatus.DELETED).count() >= ceiling:
        raise PlatformAtCapacity(
            "The platform is at capacity and cannot take new stores right now. Your request was not "
            "saved; please try again later or contact support."
        )
