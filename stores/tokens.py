"""API tokens for the partner API (django-rest-knox): stored as hashes, expiring, revocable, and each
bound to one tenant and the role it was minted with (ApiTokenScope).

The token string exists only in the return value of `api_token_create`; afterwards only its first
characters (`token_key`) identify it. A token stops working when its user's membership of its tenant
ends or when the user's password changes (the scope keeps a fingerprint of the password it was minted
under), so a password change or reset revokes every token at once, whichever way it was made.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from knox.models import AuthToken

from platform_site.errors import ApplicationError
from stores.models import ApiTokenScope
from stores.permissions import Action, TenantAccess, access_for_membership, access_require


class TokenNotFound(ApplicationError):
    code = "not_found"
    http_status = 404


class TokenLimitReached(ApplicationError):
    code = "token_limit"
    http_status = 409


def api_token_create(
    *, user: Any, access: TenantAccess, read_only: bool = False, ttl_days: int | None = None
) -> tuple[AuthToken, str]:
    """Create a token for `user` acting for `access.tenant` with `access.role` (read-only if asked);
    returns (row, token string). The string is never retrievable again. Only a role that may manage
    tokens can mint one, and at most API_TOKEN_MAX_PER_USER live tokens exist per user and tenant."""
    access_require(access=access, action=Action.MANAGE_TOKENS)
    days = settings.API_TOKEN_TTL_DAYS if ttl_days is None else ttl_days
    limit = settings.API_TOKEN_MAX_PER_USER
    with transaction.atomic():
        if api_token_list(user=user, tenant=access.tenant).count() >= limit:
            raise TokenLimitReached(
                f"You already have {limit} API tokens for this organisation; revoke one you no longer use."
            )
        row, token = AuthToken.objects.create(user=user, expiry=timedelta(days=days))
        ApiTokenScope.objects.create(
            token=row,
            tenant=access.tenant,
            role=access.role,
            read_only=read_only,
            password_fingerprint=user.get_session_auth_hash(),
        )
    return row, token


def api_token_access(*, token: AuthToken) -> TenantAccess | None:
    """What `token` may act for now: None if it has no scope, its password fingerprint is stale or its
    user is no longer a member of its tenant (the caller refuses it)."""
    scope = ApiTokenScope.objects.filter(token=token).first()
    if scope is None:
        return None  # minted before tokens were bound to a tenant: it is refused, never guessed
    if not constant_time_compare(scope.password_fingerprint, token.user.get_session_auth_hash()):
        return None
    return access_for_membership(
        user=token.user, tenant_id=scope.tenant_id, minted_role=scope.role, read_only=scope.read_only
    )


def api_token_list(*, user: Any, tenant: Any) -> QuerySet[AuthToken]:
    """The user's live tokens for `tenant`, newest first: unexpired and minted under the current password."""
    return (
        AuthToken.objects.filter(
            user=user,
            scope__tenant=tenant,
            scope__password_fingerprint=user.get_session_auth_hash(),
        )
        .exclude(expiry__lt=timezone.now())
        .select_related("scope")
        .order_by("-created")
    )


def api_token_revoke(*, user: Any, access: TenantAccess, token_key: str) -> None:
    """Delete the user's token for this tenant whose key is `token_key`; any other is not found."""
    access_require(access=access, action=Action.MANAGE_TOKENS)
    deleted, _ = AuthToken.objects.filter(
        user=user, scope__tenant=access.tenant, token_key=token_key
    ).delete()
    if not deleted:
        raise TokenNotFound("That token does not exist or was already revoked.")
